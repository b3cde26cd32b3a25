"""Policy parameters: the figures a region's policy file sets for one program and area.

Rules read these and nothing else, so a decision can be reproduced from the stored version.
"""

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import Money
from schemas.verification import Area, Program


class PolicyParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    region_code: str = Field(description="Region-code prefix the figures come from ('' = national)")
    program: Program
    area: Area
    effective_from: date
    version: str
    monthly_standard: Money
    asset_months: int = Field(default=24, ge=0, description="Financial assets per capita allowed, in months of the standard")
    vehicle_exempt_types: tuple[str, ...] = ("motorcycle", "disability")
    vehicle_value_threshold: Money = Decimal("0")
    max_dwellings: int = 1
    housing_fund_contribution_rate: Decimal = Field(default=Decimal("0.24"), gt=0, le=1)
    income_gap_ratio: Decimal = Decimal("0.30")
    special_aid_cap: Money | None = None


class ResolvedPolicy(BaseModel):
    """The parameters in force, plus what identifies them for reproduction."""

    model_config = ConfigDict(frozen=True)

    parameters: PolicyParameters
    content_hash: str
    source_files: tuple[str, ...] = ()
