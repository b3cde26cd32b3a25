"""The scored, explainable report (API contract v1) and what the scorer returns."""

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.additions import OmitWhenNone
from schemas.dates import IsoDate
from schemas.money import Money, SignedMoney
from schemas.policy import PolicyParameters
from schemas.request import RequestModel
from schemas.verification import (
    Area,
    CareGrade,
    Program,
    Recommendation,
    SourceStatus,
    SupportMode,
)

Severity = Literal["info", "warning", "disqualifying"]


class EvidenceRef(BaseModel):
    """Points at the stored source record a finding rests on; the member is masked."""

    source: str
    member: str | None = Field(default=None, examples=["530102********1231"])
    fact: str


class Finding(BaseModel):
    code: str = Field(examples=["income_below_standard"])
    severity: Severity
    message: str
    evidence: list[EvidenceRef] = Field(default_factory=list)


class ScoreAdjustment(BaseModel):
    """One line of the score breakdown: what moved the score and by how much."""

    code: str
    points: int
    reason: str


class HouseholdSummary(BaseModel):
    members: int
    monthly_income: Money
    per_capita_monthly_income: Money
    financial_assets: Money
    vehicles: int
    properties: int


class Benefit(OmitWhenNone):
    omit_when_none: ClassVar[frozenset[str]] = frozenset({"care_subsidy"})

    monthly_amount: Money = Field(
        description="Paid every month: the top-up, plus the care subsidy when there is one"
    )
    basis: str | None = Field(
        default=None,
        description="How the amount was worked out, one line per part (top-up, care subsidy, "
        "total)",
    )
    one_off_amount: Money | None = Field(
        default=None, description="A one-off payment (linshi); monthly_amount is then 0"
    )
    care_subsidy: Money | None = Field(
        default=None,
        description="tekun: the care subsidy for the request's support arrangement and "
        "self-care grade, included in monthly_amount; absent when none applies",
    )


class Assessment(BaseModel):
    """What the pure scorer returns for one household under one policy."""

    household: HouseholdSummary
    findings: list[Finding]
    complete: bool
    score: int = Field(ge=0, le=100)
    score_breakdown: list[ScoreAdjustment] = Field(default_factory=list)
    recommendation: Recommendation
    benefit: Benefit | None = None


class PolicyRef(OmitWhenNone):
    omit_when_none: ClassVar[frozenset[str]] = frozenset({"support_mode", "care_grade"})

    region_code: str
    program: Program
    area: Area
    version: str
    monthly_standard: Money = Field(
        description="The standard applied: for tekun, the one for the request's support "
        "arrangement when the region sets one per arrangement"
    )
    support_mode: SupportMode | None = Field(
        default=None, description="tekun: the support arrangement the request named"
    )
    care_grade: CareGrade | None = Field(
        default=None, description="tekun: the self-care grade the request named"
    )
    content_hash: str | None = None
    effective_from: str | None = None
    parameters: PolicyParameters | None = Field(
        default=None,
        description="Every figure the rules used, so the decision can be reproduced years later",
    )


class ReportSource(BaseModel):
    source: str
    status: SourceStatus
    fetched_at: datetime | None = None
    detail: str | None = None
    connector_version: str | None = Field(
        default=None, description="The connector version that produced this source's facts"
    )


class Report(Assessment):
    verification_id: str
    policy: PolicyRef
    sources: list[ReportSource]
    generated_at: datetime
    report_hash: str | None = None


class RescoreRequest(RequestModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"as_of": "2027-01-01"}]}
    )

    as_of: IsoDate | None = Field(
        default=None,
        description="Score under the policy in force on this date; omitted: the stored policy "
        "version exactly as it was used",
    )


class Rescore(BaseModel):
    """A report rebuilt from stored facts only; no partner is asked again."""

    report: Report
    original_report_hash: str
    identical: bool = Field(description="The rebuilt report equals the stored one")
    changes: list[str] = Field(
        default_factory=list, description="Top-level report fields that differ from the stored one"
    )


class SimulationRequest(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "region_code": "53",
                    "program": "dibao",
                    "area": "urban",
                    "overrides": {"monthly_standard": "700"},
                }
            ]
        },
    )

    overrides: dict[str, Any] = Field(
        min_length=1, description='Policy figures to replace, e.g. {"monthly_standard": 700}'
    )
    region_code: str = Field(
        default="",
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6})?$",
        description="Region prefix of the households",
    )
    program: Program = Field(description="Figures belong to one program and area")
    area: Area
    completed_from: IsoDate | None = Field(
        default=None,
        description="The households whose verification re-scored (see `SimulationResult`) "
        "completed on or after",
    )
    completed_to: IsoDate | None = Field(
        default=None,
        description="The households whose verification re-scored completed on or before",
    )
    limit: int = Field(default=1000, ge=1, le=10000, description="At most this many households")


class ImpactRow(BaseModel):
    """One household in a what-if simulation, by the verification that stands for it."""

    verification_id: str = Field(
        description="The verification re-scored for the household (see `SimulationResult`)"
    )
    reference: str
    before: Recommendation
    after: Recommendation
    benefit_before: Money | None
    benefit_after: Money | None


class SimulationResult(BaseModel):
    """What changed figures would do, counting each household once, by one completed
    verification: a household on the roll (active or under review) by its approved
    verification, the one its benefit is paid on, and no other verification naming one of
    its members (the one that first put it on the roll, its re-checks, its earlier
    applications); a dibao or tekun household not on the roll by its latest verification
    with the same members (one whose members changed counts once per composition); linshi,
    paid per application, by every verification. Households whose verification that
    stands for them had its records purged cannot be re-scored and are left out."""

    verifications: int = Field(description="Households re-scored, one verification each")
    changed: int = Field(description="Of them, those whose recommendation changes")
    newly_eligible: int
    no_longer_eligible: int
    monthly_benefit_before: Money = Field(
        description="The monthly benefits the households' stored reports compute, summed"
    )
    monthly_benefit_after: Money = Field(description="The same under the changed figures")
    monthly_benefit_delta: SignedMoney
    truncated: bool = Field(description="More households matched than `limit`")
    rows: list[ImpactRow] = Field(description="One per household, oldest verification first")
