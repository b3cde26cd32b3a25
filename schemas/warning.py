"""Early warnings: what a re-check found changed since the approved report."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.identity import FreeText
from schemas.money import Money
from schemas.request import RequestModel
from schemas.verification import REGION_PREFIX

WarningSeverity = Literal["low", "medium", "high"]
ProposedAction = Literal["keep", "raise", "lower", "stop", "review"]


class WarningStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class WarningEvidence(BaseModel):
    source: str
    member: str | None = Field(default=None, examples=["530102********1231"])
    fact: str = Field(examples=["vehicle plate=云A12345 type=car value=85000.00"])


class Warning(BaseModel):
    id: str
    code: str = Field(
        description="new_vehicle, vehicle_gone, new_property, property_gone, payroll_job, "
        "payroll_ended, pension_started, pension_ended, pension_rose, pension_fell, "
        "income_above_standard, income_below_standard, assets_above_limit, "
        "assets_below_limit, member_added, member_gone; recheck_incomplete: the re-check "
        "could not see a source (it failed, timed out or left a member out), so the "
        "household is reviewed rather than kept unchanged; benefit_differs: the amount on "
        "the roll was granted by the approver (the approved report computed none) and the "
        "re-check computes another, or none; baseline_purged: the approved verification's "
        "records were purged since (a withdrawal), so the re-check was compared with what "
        "the reports say; report_changed: nothing in the records or figures changed, but the "
        "re-check's own report calls for something other than keep (a near relative "
        "registered since, a standard raised, a policy figure changed)",
        examples=["new_vehicle"],
    )
    severity: WarningSeverity
    status: WarningStatus
    recipient_id: str
    region_code: str
    township_code: str | None = None
    source: str = Field(description="The partner source, or `household` for household totals")
    member: str | None = Field(default=None, description="The member concerned, masked")
    before: list[WarningEvidence] = Field(description="From the approved report")
    after: list[WarningEvidence] = Field(description="From the re-check")
    proposed_action: ProposedAction = Field(
        description="What the re-check's report implies for the benefit; a proposal for the "
        "caseworker and the approver, never applied by itself"
    )
    benefit_before: Money | None = None
    benefit_after: Money | None = Field(
        default=None, description="The monthly benefit the re-check's report implies"
    )
    changes_eligibility: bool
    verification_id: str = Field(description="The re-check's verification (its report)")
    previous_verification_id: str = Field(description="The approved verification compared with")
    review_verification_id: str | None = Field(
        default=None,
        description="Set when the change needs the approval step: decide on this "
        "verification (`POST /v1/verifications/{id}/decision`) to keep the recipient with "
        "the new report or take it off the roll",
    )
    note: str | None = Field(
        default=None, description="The latest note: the resolution's, else the acknowledgement's"
    )
    acknowledged_note: str | None = Field(
        default=None, description="What was written when the warning was acknowledged"
    )
    resolved_note: str | None = Field(
        default=None, description="What was written when it was resolved: what was done"
    )
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(
        default=None,
        description="The person or system the acknowledging key belongs to (its name)",
        examples=["Wang Fang, Panlong civil affairs"],
    )
    acknowledged_by_key_id: str | None = Field(
        default=None, description="The API key that acknowledged (its id)"
    )
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(
        default=None, description="The person or system the resolving key belongs to (its name)"
    )
    resolved_by_key_id: str | None = Field(
        default=None, description="The API key that resolved (its id)"
    )
    created_at: datetime


class WarningFilter(RequestModel):
    region_code: str | None = Field(
        default=None,
        pattern=REGION_PREFIX,
        description="Region prefix, within the caller's own region",
    )
    township_code: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    code: str | None = Field(
        default=None,
        pattern=r"^[a-z_]{1,40}$",
        description="Only warnings of this code (`new_vehicle`, `recheck_incomplete`, ...)",
    )
    severity: WarningSeverity | None = None
    status: WarningStatus | None = None
    recipient_id: str | None = Field(default=None, max_length=36)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of a page")


class WarningPage(BaseModel):
    items: list[Warning]
    next_cursor: str | None = None


class WarningNote(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"note": "visited; the car is a relative's"}]}
    )

    note: FreeText = Field(
        min_length=1, max_length=2000, examples=["visited; the car is a relative's"]
    )


class RegionCount(BaseModel):
    region_code: str
    open: int
    acknowledged: int
    resolved: int
    high: int = Field(description="Open or acknowledged warnings of high severity")


class WarningSummary(BaseModel):
    regions: list[RegionCount]
