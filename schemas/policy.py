"""Policy parameters: the figures a region's policy file sets for one program and area.

Rules read these and nothing else, so a decision can be reproduced from the stored version.
"""

from datetime import date
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from schemas.additions import OmitWhenNone
from schemas.money import Money
from schemas.verification import Area, Program, SupportMode


def _not_a_boolean(value: object) -> object:
    """JSON's `true` is not the count 1 (nor TOML's): pydantic would read it as one."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    return value


Count = Annotated[int, BeforeValidator(_not_a_boolean)]
"""A whole number of months, dwellings or a grade: `12` or `"12"`, never `true`."""

GradeKey = Annotated[Count, Field(ge=1, le=3)]
"""A self-care grade as a key of `care_subsidies` (1 unable, 2 partly able, 3 able)."""

FIGURE_MAX = 1_000_000
"""The most a monthly standard, a care subsidy or a one-off cap may be: a million yuan, far
above any published figure (standards of a few hundred yuan, one-off caps of 30,000). The
rules multiply a standard by members (30 at most), months (1,200) and ratios (1,000);
bounded so, every amount they work out stays far inside the 16 digits an amount has,
whatever figures a file or a simulation sets."""

RATE_MIN = Decimal("0.01")
"""The least housing-fund contribution rate (employee + employer): a deposit ÷ the rate is
the implied wage, so a rate near 0 would imply a wage no amount can hold. Real combined
rates are 10% to 24%."""

Figure = Annotated[Money, Field(le=FIGURE_MAX)]
"""A monthly standard, care subsidy or cap: a non-negative amount of a million yuan at most."""

Ratio = Annotated[Decimal, Field(max_digits=12, decimal_places=6)]
"""A rate or a multiple, written with six decimals at most (no `1E-30`)."""


class PolicyParameters(OmitWhenNone):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # Figures added after reports were first stored: absent, they leave the dump (and so the
    # content hash of every older version) exactly as it was.
    omit_when_none: ClassVar[frozenset[str]] = frozenset(
        {
            "support_mode_standards",
            "care_subsidies",
            "income_standard",
            "business_stake",
            "taxed_income_ratio",
            "social_insurance_base_ratio",
            "recheck_regular_months",
            "recheck_other_months",
            "consent_valid_months",
        }
    )

    region_code: str = Field(description="Region-code prefix the figures come from ('' = national)")
    program: Program
    area: Area
    effective_from: date
    version: str
    monthly_standard: Figure
    asset_months: Count = Field(
        default=24,
        ge=0,
        le=1200,
        description="Financial assets per capita allowed, in months of the standard",
    )
    vehicle_exempt_types: tuple[str, ...] = ("motorcycle", "disability")
    vehicle_value_threshold: Money = Decimal("0")
    max_dwellings: Count = Field(
        default=1, ge=0, le=100, description="Residential dwellings allowed"
    )
    housing_fund_contribution_rate: Ratio = Field(
        default=Decimal("0.24"),
        ge=RATE_MIN,
        le=1,
        description="Employee + employer rate: a monthly deposit ÷ this rate = the implied wage",
    )
    income_gap_ratio: Ratio = Field(
        default=Decimal("0.30"),
        ge=0,
        le=1,
        description="Declared vs verified income gap (share of the larger) that needs review",
    )
    special_aid_cap: Figure | None = Field(
        default=None, description="Cap on a one-off linshi payment; None = no cap"
    )
    linshi_benefit_months: Count = Field(
        default=3,
        ge=0,
        le=120,
        description="A linshi one-off pays the household's monthly shortfall this many times",
    )
    support_mode_standards: dict[SupportMode, Figure] | None = Field(
        default=None,
        description="tekun: the monthly standard by support arrangement where the region sets "
        "one per arrangement (Jiangxi rural: concentrated 505, dispersed 400). A request "
        "naming an arrangement missing here is refused; None: monthly_standard applies to "
        "every arrangement",
    )
    income_standard: Figure | None = Field(
        default=None,
        description="tekun: the monthly income per member the household must stay below, the "
        "local dibao standard of the same area on the same day (特困人员认定办法: income "
        "below the local minimum-living standard); filled in from the dibao figures when a "
        "tekun version is resolved, unless a file sets it. None: monthly_standard",
    )
    care_subsidies: dict[SupportMode, dict[GradeKey, Figure]] | None = Field(
        default=None,
        description="tekun: the monthly care subsidy by support arrangement and self-care "
        "grade (Yunnan concentrated: 1 → 835, 2 → 418, 3 → 251). A request naming an "
        "arrangement and grade missing here is refused",
    )
    business_stake: Money | None = Field(
        default=None,
        description="A member's stake in a company (registered capital × share) from which "
        "it needs review; None: the default, 50,000 yuan",
    )
    taxed_income_ratio: Ratio | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="Taxed income per month above this multiple of the monthly standard needs "
        "review; None: the default, 1",
    )

    social_insurance_base_ratio: Ratio | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="A contribution base (缴费基数) above this multiple of the monthly "
        "standard needs review; None: the default, 1",
    )

    @property
    def social_insurance_review_ratio(self) -> Decimal:
        ratio = self.social_insurance_base_ratio
        return DEFAULT_SOCIAL_INSURANCE_BASE_RATIO if ratio is None else ratio

    recheck_regular_months: Count | None = Field(
        default=None,
        ge=1,
        le=60,
        description="Months between re-checks of a household on regular support (常补对象); "
        "None: the default, 12 (at least yearly)",
    )
    recheck_other_months: Count | None = Field(
        default=None,
        ge=1,
        le=60,
        description="Months between re-checks of the other recipients (非常补对象); None: the "
        "default, 6",
    )
    consent_valid_months: Count | None = Field(
        default=None,
        ge=1,
        le=240,
        description="Months a signed authorization (授权书) allows queries for; None: as long "
        "as the household receives the benefit",
    )

    def recheck_months(self, recheck_class: str) -> int:
        """Months between re-checks of a recipient of this class (`regular` or `other`)."""
        if recheck_class == "regular":
            months = self.recheck_regular_months
            return DEFAULT_RECHECK_REGULAR_MONTHS if months is None else months
        months = self.recheck_other_months
        return DEFAULT_RECHECK_OTHER_MONTHS if months is None else months

    @property
    def business_stake_threshold(self) -> Decimal:
        return DEFAULT_BUSINESS_STAKE if self.business_stake is None else self.business_stake

    @property
    def taxed_income_review_ratio(self) -> Decimal:
        ratio = self.taxed_income_ratio
        return DEFAULT_TAXED_INCOME_RATIO if ratio is None else ratio

    standard_is_placeholder: bool = Field(
        default=False,
        description="The monthly standard is a placeholder, not a published figure (e.g. the "
        "national defaults): every assessment under it needs review",
    )


class ResolvedPolicy(BaseModel):
    """The parameters in force, plus what identifies them for reproduction."""

    model_config = ConfigDict(frozen=True)

    parameters: PolicyParameters
    content_hash: str
    source_files: tuple[str, ...] = ()


DEFAULT_BUSINESS_STAKE = Decimal("50000")
DEFAULT_TAXED_INCOME_RATIO = Decimal("1")
DEFAULT_SOCIAL_INSURANCE_BASE_RATIO = Decimal("1")

DEFAULT_RECHECK_REGULAR_MONTHS = 12
"""Regular-support households (常补对象) are re-examined at least yearly (Jiangxi seed)."""
DEFAULT_RECHECK_OTHER_MONTHS = 6
"""The other recipients (非常补对象) every six months (Jiangxi seed)."""
