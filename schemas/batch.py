"""Batches: many households submitted at once, one verification each (API contract v1).

A batch's body is not a pydantic model: it is read as a stream (NDJSON, one household per
line, or JSON `{"reference": ..., "households": [...]}`), and each household is checked
alone as a `VerificationCreate`.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.identity import OneLine
from schemas.problem import ProblemError
from schemas.request import RequestModel
from schemas.verification import Recommendation, VerificationStatus


class BatchStatus(StrEnum):
    open = "open"
    """Accepting households (`POST /v1/batches/{id}/households`)."""
    closed = "closed"
    """All households received; its verifications run to the end."""
    cancelled = "cancelled"
    """Cancelled: verifications not yet started are `cancelled`, started ones finish."""


class BatchKind(StrEnum):
    upload = "upload"
    """Households sent by a caller (`POST /v1/batches`)."""
    recheck = "recheck"
    """The re-checks of one region that fell due on one day, started by the scheduler."""


class BatchProgress(BaseModel):
    total: int = Field(description="Households accepted (verifications made)")
    done: int = Field(description="Verifications ended: completed, failed or cancelled")
    percent: float
    rate_per_s: float | None = Field(
        default=None, description="Verifications ended per second since the batch was created"
    )
    eta_s: float | None = Field(
        default=None, description="Seconds until all have ended at that rate (open: so far)"
    )
    finished: bool = Field(description="Closed or cancelled, and no verification left to run")


class Batch(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c1a2e-8d7b-4c1e-9a53-0b6f1e2d3c4a",
                    "reference": "recheck-2026-h2",
                    "kind": "upload",
                    "status": "closed",
                    "created_at": "2026-12-04T02:00:00Z",
                    "closed_at": "2026-12-04T02:01:10Z",
                    "cancelled_at": None,
                    "lines_received": 100000,
                    "households": 99870,
                    "invalid_lines": 130,
                    "by_status": {"completed": 61200, "running": 40, "queued": 38630},
                    "by_recommendation": {"eligible": 48100, "ineligible": 9800, "review": 3300},
                    "progress": {
                        "total": 99870,
                        "done": 61200,
                        "percent": 61.3,
                        "rate_per_s": 41.5,
                        "eta_s": 931.8,
                        "finished": False,
                    },
                }
            ]
        }
    )

    id: str
    reference: str | None = None
    kind: BatchKind = BatchKind.upload
    status: BatchStatus
    created_at: datetime
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    completed_at: datetime | None = Field(
        default=None,
        description="When the batch was found finished and `batch.completed` was recorded",
    )
    lines_received: int = Field(
        description="Lines (NDJSON) or households (JSON) received so far, valid or not; an "
        "upload that resumes starts after this one"
    )
    households: int = Field(description="Valid lines: each made one verification")
    invalid_lines: int = Field(description="Lines refused: see `GET /v1/batches/{id}/errors`")
    by_status: dict[VerificationStatus, int]
    by_recommendation: dict[Recommendation, int] = Field(
        description="The recommendations of its completed verifications (a withdrawn one's "
        "is not counted)"
    )
    progress: BatchProgress


class BatchUpload(BaseModel):
    """What one upload did to its batch."""

    first_line: int
    last_line: int = Field(description="The last line read (first_line - 1 when none)")
    accepted: int = Field(description="New verifications made by this upload")
    invalid: int = Field(description="Lines of this upload refused (see the batch's errors)")
    skipped: int = Field(description="Lines received before (a resumed upload), not read again")


class BatchAccepted(Batch):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **Batch.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index,dict-item]
                    "upload": {
                        "first_line": 1,
                        "last_line": 100000,
                        "accepted": 99870,
                        "invalid": 130,
                        "skipped": 0,
                    },
                }
            ]
        }
    )

    upload: BatchUpload


class BatchLineError(BaseModel):
    """A refused line: nothing of it was stored. `errors` name the field, as a 422 does."""

    line: int
    status: int = Field(description="The status the line alone would have been answered with")
    title: str
    detail: str | None = None
    errors: list[ProblemError] = Field(default_factory=list)


class BatchErrorPage(BaseModel):
    items: list[BatchLineError]
    next_cursor: str | None = None


class BatchVerification(BaseModel):
    line: int
    id: str
    reference: str
    status: VerificationStatus
    recommendation: Recommendation | None = None


class BatchVerificationPage(BaseModel):
    items: list[BatchVerification]
    next_cursor: str | None = None


class BatchPage(BaseModel):
    items: list[Batch]
    next_cursor: str | None = None


class LinePage(RequestModel):
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(
        default=None, max_length=32, description="`next_cursor` of the previous page"
    )


class BatchVerificationFilter(LinePage):
    status: VerificationStatus | None = None
    recommendation: Recommendation | None = None


class BatchFilter(RequestModel):
    status: BatchStatus | None = None
    kind: BatchKind | None = Field(
        default=None, description="upload: sent by a caller; recheck: the scheduler's"
    )
    reference: OneLine | None = Field(
        default=None, max_length=128, description="The batch's own reference, exactly"
    )
    completed: bool | None = Field(
        default=None,
        description="true: only batches found finished (`completed_at` set, "
        "`batch.completed` sent); false: only those still going",
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor`")
