"""RFC 9457 problem details."""

from typing import Any

from pydantic import BaseModel, Field


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str
    pointer: str | None = Field(
        default=None, description="JSON pointer to the bad field of a submitted document"
    )


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemError] | None = Field(default=None)

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
