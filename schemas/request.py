"""The base of every request model: unknown fields refused, no NUL character in any text.

PostgreSQL refuses a NUL character in text (SQLite stores it), so a NUL that reached the
database was a 500 on one and stored on the other. Every request body is refused alike,
with the field named, before anything is stored.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

NUL = "\x00"
NUL_MESSAGE = "must not contain a NUL character"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(isinstance(item, str) and NUL in item for item in value)
    # A dict is a nested model's input (which checks its own fields) or a mapping of
    # figures that is read, never stored.
    return False


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Nested models check their own fields, so the error names the innermost one.
        if _has_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value
