"""Canonical records a connector returns, whatever its partner's wire format.

Every record names the household member it belongs to by full ID number: records stay
inside hedui (database, scorer) and are masked whenever they are shown.
"""

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from schemas.identity import redact_id_numbers
from schemas.money import Money


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id_number: str


class VehicleRecord(_Record):
    kind: Literal["vehicle"] = "vehicle"
    plate: str
    type: Literal["car", "motorcycle", "truck", "disability", "other"]
    registered_on: date | None = None
    value: Money | None = Field(
        default=None, description="None: the partner recorded no value (unknown)"
    )


class PensionRecord(_Record):
    kind: Literal["pension"] = "pension"
    status: Literal["receiving", "contributing", "none"]
    monthly_amount: Money


class HousingFundRecord(_Record):
    kind: Literal["housing_fund"] = "housing_fund"
    status: Literal["active", "closed"]
    balance: Money
    monthly_deposit: Money


class PropertyRecord(_Record):
    kind: Literal["property"] = "property"
    certificate: str
    usage: Literal["residential", "commercial", "land"]
    area_m2: Decimal = Field(ge=0, le=10_000_000, description="Floor area, m² (at most 10 km²)")
    region_code: str


class PayrollRecord(_Record):
    kind: Literal["payroll"] = "payroll"
    employer: str
    monthly_salary: Money


class BankAccountRecord(_Record):
    kind: Literal["bank_account"] = "bank_account"
    bank: str
    account: str = Field(description="Masked account number: last 4 digits only")
    balance: Money


class IncomeRecord(_Record):
    """A monthly income of any other category (for plugin and declarative connectors)."""

    kind: Literal["income"] = "income"
    category: str
    monthly_amount: Money


class AssetRecord(_Record):
    """An asset of any other category; `financial` ones count toward the asset limit."""

    kind: Literal["asset"] = "asset"
    category: str
    value: Money
    financial: bool = True


class BusinessRecord(_Record):
    """A company a member is registered with at business registration (工商)."""

    kind: Literal["business"] = "business"
    company: str = Field(min_length=1)
    credit_code: str | None = None
    role: Literal["legal_representative", "shareholder"]
    registered_capital: Money
    share_ratio: Decimal | None = Field(
        default=None, ge=0, le=1, description="Shareholders: the share held, 0 to 1"
    )


class TaxedIncomeRecord(_Record):
    """Annual taxable income a member was taxed on (个税), for one tax year."""

    kind: Literal["taxed_income"] = "taxed_income"
    year: int = Field(ge=2000, le=2100)
    annual_amount: Money


class SocialInsuranceRecord(_Record):
    """Social-insurance contributions (社保缴费) paid for a member as an employee."""

    kind: Literal["social_insurance"] = "social_insurance"
    employer: str | None = None
    status: Literal["contributing", "suspended"]
    monthly_base: Money = Field(description="缴费基数: the monthly wage contributions are paid on")


Record = Annotated[
    VehicleRecord
    | PensionRecord
    | HousingFundRecord
    | PropertyRecord
    | PayrollRecord
    | BankAccountRecord
    | IncomeRecord
    | AssetRecord
    | BusinessRecord
    | TaxedIncomeRecord
    | SocialInsuranceRecord,
    Field(discriminator="kind"),
]


class Evidence(BaseModel):
    """What one partner source knows about a household; no records means `no_record`.

    `answered` accounts for the members: the ID number of each member the partner's answer
    covers, once per answer it gave about them. A member the partner left out is missing
    from it, one it answered for twice appears twice; either makes the whole answer
    malformed, never "no record". When a partner's format lists only hits (an absent member
    means no record), a complete answer covers every member it was asked about.
    """

    model_config = ConfigDict(extra="forbid")

    records: list[Record] = Field(default_factory=list)
    answered: list[str]


class MemberQuery(BaseModel):
    """One household member as a connector sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id_number: str
    name: str | None = None


CONSENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
"""What a consent document id (授权书编号) may be made of: it travels as an HTTP header."""
CONSENT_ID_MAX = 64
PURPOSE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
CONNECTOR_TEST_PURPOSE = "connector_test"
"""The purpose of a test read of a connector (not a verification of any program)."""
_CONSENT_ID = re.compile(CONSENT_ID_PATTERN)
_HEADER_SAFE = "._:/-"


class RequestContext(BaseModel):
    """Why hedui asks a partner about a household: the signed authorization (授权书) that
    allows the query and the purpose (the program) it serves.

    Every partner request about a household carries both (`connectors.http` sends them as
    `X-Hedui-Consent-Id` and `X-Hedui-Purpose`), as X-Road requests carry their user and
    issue. Neither may carry an ID number or a name: they are headers, logged by partners.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    consent_id: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[\x21-\x7e]+$",
        description="The consent document's id, printable ASCII (see `of`)",
    )
    purpose: str = Field(pattern=PURPOSE_PATTERN, examples=["dibao"])

    @classmethod
    def of(cls, consent_document_id: str, purpose: str) -> "RequestContext":
        """The context of a stored consent document id, made fit for a header.

        Ids accepted today are sent as they are. One stored before ids were bounded (any
        text up to 64 characters) is percent-encoded (UTF-8), so it still names its
        document; anything shaped like an ID number in it is masked first.
        """
        consent_id = consent_document_id
        if not (_CONSENT_ID.match(consent_id) and len(consent_id) <= CONSENT_ID_MAX):
            consent_id = quote(redact_id_numbers(consent_id.strip()), safe=_HEADER_SAFE)
        return cls(consent_id=consent_id or "%20", purpose=purpose)


class HouseholdQuery(BaseModel):
    """The whole household, so a connector can ask for all members in as few calls as possible.

    `context` is why it is asked: the client a connector is handed sends it with every
    request (`connectors.http.PartnerClient`), so a connector need not pass it on itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    region_code: str
    as_of: date
    members: tuple[MemberQuery, ...]
    context: RequestContext

    @property
    def id_numbers(self) -> list[str]:
        return [member.id_number for member in self.members]
