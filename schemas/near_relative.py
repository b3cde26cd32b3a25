"""The near-relative registry (近亲属备案): staff members' near relatives, to guard against
人情保 / 关系保. Read models carry masked identifiers and names only."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.identity import FreeText, IdNumber, OneLine
from schemas.request import RequestModel

Relationship = Literal[
    "spouse", "parent", "child", "sibling", "grandparent", "grandchild", "in_law", "other"
]


class NearRelativeCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "region_code": "530102",
                    "staff_name": "李四",
                    "staff_position": "村委会主任",
                    "relative_id_number": "11010519491231002X",
                    "relative_name": "张三",
                    "relationship": "spouse",
                }
            ]
        },
    )

    region_code: str = Field(
        pattern=r"^[0-9]{2,6}$",
        description="GB/T 2260 code (or prefix) of where the staff member works",
        examples=["530102"],
    )
    staff_name: OneLine = Field(min_length=1, max_length=64, examples=["李四"])
    staff_position: FreeText = Field(
        min_length=1,
        max_length=64,
        description="e.g. 村委会主任, 民政专干",
        examples=["村委会主任"],
    )
    relative_id_number: IdNumber
    relative_name: OneLine = Field(min_length=1, max_length=64, examples=["张三"])
    relationship: Relationship = Field(
        description="How the relative is related to the staff member"
    )


class NearRelativeRevoke(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "任职结束"}]})

    reason: FreeText = Field(min_length=1, max_length=2000, examples=["任职结束"])


class NearRelative(BaseModel):
    """A registration as shown to callers: ID number and names always masked."""

    id: str
    region_code: str
    staff_name: str = Field(examples=["李*"])
    staff_position: str
    relative_id_number: str = Field(examples=["110105********002X"])
    relative_name: str = Field(examples=["张*"])
    relationship: Relationship
    registered_by: str = Field(
        description="The person or system the registering key belongs to (its name)",
        examples=["Wang Fang, Panlong civil affairs"],
    )
    registered_by_key_id: str = Field(description="The API key that registered (its id)")
    registered_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(
        default=None, description="The person or system the revoking key belongs to (its name)"
    )
    revoked_by_key_id: str | None = Field(
        default=None, description="The API key that revoked (its id)"
    )
    revoked_reason: str | None = None


class NearRelativePage(BaseModel):
    items: list[NearRelative]
    next_cursor: str | None = None
