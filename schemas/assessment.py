"""What the scorer reads: stored facts about one household, never a live partner."""

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.evidence import Record
from schemas.money import Money
from schemas.verification import (
    Area,
    CareGrade,
    Program,
    Relation,
    SourceStatus,
    SupportMode,
)


class HouseholdMember(BaseModel):
    model_config = ConfigDict(frozen=True)

    id_number: str
    name: str
    relation: Relation = "other"
    declared_monthly_income: Money = Field(default=Decimal("0"))


class SourceOutcome(BaseModel):
    """One partner source's stored answer for the household."""

    model_config = ConfigDict(frozen=True)

    source: str
    status: SourceStatus
    records: tuple[Record, ...] = ()
    fetched_at: datetime | None = None
    detail: str | None = None
    connector_version: str | None = None
    """The version of the connector that produced these facts."""


class NearRelativeMatch(BaseModel):
    """A member who appears in the near-relative registry (近亲属备案)."""

    model_config = ConfigDict(frozen=True)

    id_number: str
    staff_position: str = Field(description="Role of the registered staff member, e.g. 村委会主任")
    relationship: str = Field(description="How the member is related to the staff member")


class AssessmentInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    program: Program
    area: Area
    as_of: date
    members: tuple[HouseholdMember, ...]
    sources: tuple[SourceOutcome, ...]
    near_relatives: tuple[NearRelativeMatch, ...] = ()
    support_mode: SupportMode | None = None
    """tekun: the support arrangement the request named (picks the standard)."""
    care_grade: CareGrade | None = None
    """tekun: the supported person's self-care grade (adds the care subsidy)."""
