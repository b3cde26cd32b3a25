"""The scored, explainable report (API contract v1) and what the scorer returns."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.money import Money, SignedMoney
from schemas.verification import Area, Program, Recommendation, SourceStatus

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


class Benefit(BaseModel):
    monthly_amount: Money
    basis: str | None = None
    one_off_amount: Money | None = Field(
        default=None, description="A one-off payment (linshi); monthly_amount is then 0"
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


class PolicyRef(BaseModel):
    region_code: str
    program: Program
    area: Area
    version: str
    monthly_standard: Money
    content_hash: str | None = None
    effective_from: str | None = None


class ReportSource(BaseModel):
    source: str
    status: SourceStatus
    fetched_at: datetime | None = None
    detail: str | None = None


class Report(Assessment):
    verification_id: str
    policy: PolicyRef
    sources: list[ReportSource]
    generated_at: datetime
    report_hash: str | None = None


class ImpactRow(BaseModel):
    """One verification in a what-if simulation."""

    verification_id: str
    before: Recommendation
    after: Recommendation
    benefit_before: Money | None
    benefit_after: Money | None


class SimulationResult(BaseModel):
    verifications: int
    changed: int
    monthly_benefit_delta: SignedMoney
    rows: list[ImpactRow]
