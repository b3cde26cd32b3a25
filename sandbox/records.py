"""What the agencies know about one person: the body of `POST /sandbox/people`.

Seeded people are validated with these models; synthetic people are built with
`model_construct` from values that are valid by construction, which keeps the hot path
free of validation cost. A section left as None means "no record" at that agency.
"""

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.identity import IdNumber

Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
"""A yuan amount as the agencies keep it: non-negative, at most two decimals."""

RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
VehicleType = Literal["car", "motorcycle", "truck", "disability"]
Usage = Literal["residential", "commercial", "land"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Vehicle(_Section):
    plate: str = Field(min_length=1, max_length=16)
    type: VehicleType
    registered_on: date
    value: Amount | None = Field(default=None, description="None: no valuation on record")


class Pension(_Section):
    status: Literal["receiving", "contributing", "none"]
    monthly_amount: Amount = Decimal("0.00")


class HousingFund(_Section):
    status: Literal["active", "closed"]
    balance: Amount
    monthly_deposit: Amount = Decimal("0.00")


class Property(_Section):
    certificate: str = Field(min_length=1, max_length=64)
    usage: Usage
    area_m2: Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]
    region_code: RegionCode


class Payroll(_Section):
    employer: str = Field(min_length=1, max_length=64)
    monthly_salary: Amount


class BankAccount(_Section):
    bank: str = Field(min_length=1, max_length=64)
    account: str = Field(pattern=r"^[0-9]{8,32}$")
    balance: Amount


class BusinessRole(_Section):
    """One company a person is registered with at business registration (工商)."""

    company: str = Field(min_length=1, max_length=128)
    credit_code: str = Field(
        pattern=r"^[0-9A-HJ-NP-RTUW-Y]{18}$", description="Unified social credit code"
    )
    role: Literal["legal_representative", "shareholder"]
    registered_capital: Amount
    share_ratio: Annotated[Decimal, Field(ge=0, le=1, decimal_places=4)] | None = Field(
        default=None, description="Shareholders only: the share held, 0 to 1"
    )


class Tax(_Section):
    """Individual income tax (个税): annual taxable income of one tax year."""

    year: int = Field(ge=2000, le=2100)
    annual_taxable_income: Amount


class SocialInsurance(_Section):
    """Social-insurance contributions (社保缴费) an employer pays for a person."""

    employer: str = Field(min_length=1, max_length=128)
    status: Literal["contributing", "suspended"] = "contributing"
    monthly_base: Amount = Field(description="缴费基数: the monthly wage contributions are paid on")


class Person(_Section):
    """Everything every agency holds about one resident ID number."""

    id_number: IdNumber
    vehicles: list[Vehicle] | None = None
    pension: Pension | None = None
    housing_fund: HousingFund | None = None
    real_estate: list[Property] | None = None
    public_payroll: Payroll | None = None
    bank_accounts: list[BankAccount] | None = None
    business: list[BusinessRole] | None = None
    tax: Tax | None = None
    social_insurance: SocialInsurance | None = None
