"""Recipients (the roll of households receiving a benefit) and their re-checks."""

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.dates import IsoDate
from schemas.identity import FreeText, OneLine
from schemas.money import Money
from schemas.request import RequestModel
from schemas.verification import REGION_PREFIX, Area, Consent, Member, Program


class RecheckClass(StrEnum):
    """How often a recipient is re-checked (intervals in the region's policy files)."""

    regular = "regular"
    """Regular support (常补对象): at least yearly by default."""
    other = "other"
    """Everyone else (非常补对象): every six months by default."""


class RecipientStatus(StrEnum):
    active = "active"
    under_review = "under_review"
    """A re-check found a change of eligibility; the approver decides on the new report
    (one returned: on the report of the re-check the next pass starts again)."""
    left = "left"
    """Off the roll: rejected at a re-check, or stopped; `left_reason` says why."""


class RecheckStatus(StrEnum):
    queued = "queued"
    """A verification was started for it."""
    needs_consent = "needs_consent"
    """The signed authorization had expired when it fell due: nobody was queried."""
    completed = "completed"
    failed = "failed"
    returned = "returned"
    """Its report was returned by the approver without a ruling: the next pass starts it
    again, with a new verification, for the approver to decide on."""


class RecipientConsent(BaseModel):
    document_id: str
    signed_on: date
    expires_on: date | None = Field(
        default=None, description="null: valid while the household receives the benefit"
    )
    withdrawn_on: date | None = Field(
        default=None,
        description="The day it was withdrawn (its expiry is the day before); a renewal "
        "(POST /v1/recipients/{id}/consent) is a new document signed on or after it",
    )


class Recipient(BaseModel):
    id: str
    reference: str
    program: Program
    area: Area
    region_code: str
    township_code: str | None = None
    status: RecipientStatus
    recheck_class: RecheckClass
    monthly_benefit: Money | None = Field(
        default=None,
        description="The monthly benefit granted by the latest approval: the approved "
        "report's, or the approver's when that report computed none",
    )
    origin_verification_id: str
    approved_verification_id: str = Field(
        description="The latest approved verification: the next re-check is compared with "
        "its report"
    )
    approved_on: date
    next_recheck_on: date | None = Field(
        description="When the next re-check is due; null once the recipient has left the roll"
    )
    consent: RecipientConsent
    needs_new_consent: bool = Field(
        description="The authorization on record has ended (it expired, or a withdrawal "
        "ended it): record a new one (`POST /v1/recipients/{id}/consent`). Also while a "
        "re-check held for want of one waits for the next pass, which runs it under the "
        "new one. Never for a household off the roll"
    )
    members: list[Member] = Field(description="As approved, masked")
    left_on: date | None = None
    left_reason: str | None = None
    created_at: datetime


class RecipientFilter(RequestModel):
    """Query parameters of `GET /v1/recipients`; all optional, combined with AND."""

    region_code: str | None = Field(
        default=None,
        pattern=REGION_PREFIX,
        description="Region prefix, within the caller's own region",
    )
    township_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{9}$",
        description="Only households of this township, within the caller's own region",
    )
    reference: OneLine | None = Field(
        default=None,
        max_length=128,
        description="The case reference the household was approved under, exactly",
    )
    program: Program | None = None
    recheck_class: RecheckClass | None = None
    status: RecipientStatus | None = None
    needs_new_consent: bool | None = Field(
        default=None,
        description="`true`: those a caseworker must get a new authorization from (see "
        "`needs_new_consent`); `false`: the others",
    )
    due_before: IsoDate | None = Field(
        default=None,
        description="Next re-check due on or before this date (those still on the roll)",
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of a page")


class RecipientPage(BaseModel):
    items: list[Recipient]
    next_cursor: str | None = None


class RecipientStop(RequestModel):
    """An approver takes a household off the roll."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "moved out of the county"}]}
    )

    reason: FreeText = Field(min_length=1, max_length=2000, examples=["moved out of the county"])


class ConsentRenewal(Consent):
    """A new signed authorization for a recipient's next re-checks."""

    model_config = ConfigDict(
        extra="forbid",
        # Signed in the past: a renewal signed after today is refused (422).
        json_schema_extra={"examples": [{"document_id": "AUTH-0200-2", "signed_on": "2026-11-28"}]},
    )


class RecheckPlanItem(BaseModel):
    """One due re-check: what a run did (or, previewing, would do) with it."""

    recipient_id: str
    region_code: str
    due_on: date
    outcome: str = Field(
        description="`queued` (a verification started), `needs_consent` (authorization "
        "expired: nobody queried), `already_scheduled` (another run enqueued it), "
        "`retry_later` (its verification failed, and it waits before it is started "
        "again: 5 minutes after the first failure, doubling, at most a day)"
    )
    verification_id: str | None = None


class RecheckRun(BaseModel):
    as_of: IsoDate
    dry_run: bool
    queued: int
    needs_consent: int
    already_scheduled: int
    retry_later: int = Field(
        default=0, description="Failed re-checks waiting before they are started again"
    )
    items: list[RecheckPlanItem]
