"""The audit trail as auditors read it: who did what to which object, when, with what
outcome. Events name objects by id and never carry personal data."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.dates import IsoDateTime
from schemas.identity import IdNumber
from schemas.request import RequestModel


class AuditEvent(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 1042,
                    "at": "2026-12-04T09:30:12.123456Z",
                    "actor_key_id": "0b6a2f6e-3f7e-4c1b-9d7a-5f0c8a1e2d34",
                    "actor_name": "赵磊 (云南省民政厅信息中心)",
                    "role": "integrator",
                    "region": "53",
                    "action": "connector.test",
                    "object_type": "connector",
                    "object_id": "city_pensions",
                    "object_region": "530102",
                    "request_id": "5f2b1c0e9a7d4e3f8b6a1c2d3e4f5a6b",
                    "outcome": "ok",
                    # A null would be dropped from the document's examples (FastAPI leaves
                    # out None values), and `detail` is required: an event that has one.
                    "detail": "members 530102********1231",
                }
            ]
        },
    )

    id: int
    at: datetime
    actor_key_id: str | None = Field(description="The API key used; null for the command line")
    actor_name: str = Field(description="Whom the key belongs to")
    role: str
    region: str = Field(description="The actor's region scope; empty: every region")
    action: str = Field(description="e.g. verification.create, report.read, decision.record")
    object_type: str
    object_id: str | None
    object_region: str | None = Field(
        description="The household's township code, else its region code, for a verification; "
        "the region code of the household a connector test read asked about"
    )
    request_id: str | None = Field(description="`X-Request-ID` of the request, as in the logs")
    outcome: str = Field(description="`ok`, or the HTTP status of the refusal")
    detail: str | None = Field(
        description="What the action and object leave out, never personal data in clear: "
        "a connector test read names the members it read by their ID numbers masked"
    )


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next (older) page; null at the end"
    )


class AuditQuery(RequestModel):
    """Filters of the audit trail; they combine with AND."""

    model_config = ConfigDict(extra="forbid")

    actor_key_id: str | None = Field(default=None, max_length=36, description="Who acted")
    action: str | None = Field(default=None, max_length=64, examples=["report.read"])
    object_id: str | None = Field(default=None, max_length=64, description="e.g. a verification id")
    since: IsoDateTime | None = Field(default=None, description="From this time (inclusive)")
    until: IsoDateTime | None = Field(default=None, description="Before this time")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of a page")


class AuditSearch(AuditQuery):
    """`POST /v1/audit/search`: the same filters, and a person, whose ID number travels in
    the body, never in a URL."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"id_number": "11010519491231002X", "action": "report.read", "limit": 50}]
        },
    )

    id_number: IdNumber | None = Field(
        default=None, description="Events about verifications whose household includes this person"
    )
