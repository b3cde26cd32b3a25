"""API keys as administrators see them: who holds each, what it may do, whether it still
works. A token (or its hash) is never part of any answer."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.identity import FreeText
from schemas.request import RequestModel

KeyStatus = Literal["active", "expired", "revoked"]
KeyRole = Literal["caseworker", "approver", "operator", "integrator", "auditor", "admin"]


class ApiKey(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6a2f6e-3f7e-4c1b-9d7a-5f0c8a1e2d34",
                    "name": "Zhang caseworker, Kunming Wuhua",
                    "role": "caseworker",
                    "region": "530102",
                    "status": "active",
                    "created_at": "2026-12-04T06:00:00Z",
                    "expires_at": "2027-03-04T06:00:00Z",
                    "last_used_at": "2026-12-04T07:31:00Z",
                    "revoked_at": None,
                    "revoked_reason": None,
                }
            ]
        }
    )

    id: str
    name: str = Field(description="The person or system the key belongs to")
    role: str
    region: str = Field(description="GB/T 2260 prefix the key is scoped to; 00: every region")
    status: KeyStatus
    created_at: datetime
    expires_at: datetime | None = Field(description="null: never (internal keys only)")
    last_used_at: datetime | None = Field(
        description="Accurate to a minute; null: never used (since last use was recorded)"
    )
    revoked_at: datetime | None = None
    revoked_reason: str | None = None


class ApiKeyPage(BaseModel):
    items: list[ApiKey]
    next_cursor: str | None = None


class ApiKeyQuery(RequestModel):
    status: KeyStatus | None = Field(default=None, description="Only keys in this state")
    role: KeyRole | None = Field(default=None, description="Only keys of this role")
    region: str | None = Field(
        default=None,
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9})$",
        description="Only keys inside this region prefix (53 lists 53, 5301, ...), within "
        "the caller's own region",
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=128, description="Name contains (any case)"
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


class ApiKeyRevoke(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "staff member left the county office"}]}
    )

    reason: FreeText | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Why (kept with the key, shown by `hedui apikey list`)",
        examples=["staff member left the county office"],
    )
