"""The base of every request model: unknown fields refused, no NUL character in any text,
no boolean where a number belongs.

PostgreSQL refuses a NUL character in text (SQLite stores it), so a NUL that reached the
database was a 500 on one and stored on the other. Every request body is refused alike,
with the field named, before anything is stored.

JSON's `true` equals 1 to Python, and pydantic's lax mode takes it as one: `"limit": true`
was a page of one, an override `"asset_months": true` one month. A boolean given for a
field that takes numbers (and not booleans) is refused.
"""

import types
import typing
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

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


_NUMBERS = (int, float, Decimal)


def _takes_numbers_only(annotation: Any) -> bool:
    """Whether a field of this type takes numbers and no boolean (`int | None`,
    `Annotated[Literal[1, 2, 3], ...]`, `Decimal`), looking through Annotated, Optional
    and unions."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _takes_numbers_only(get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        arms = [arm for arm in get_args(annotation) if arm is not type(None)]
        return bool(arms) and all(_takes_numbers_only(arm) for arm in arms)
    if origin is Literal:
        values = get_args(annotation)
        return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    return (
        isinstance(annotation, type) and annotation is not bool and issubclass(annotation, _NUMBERS)
    )


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        # Nested models check their own fields, so the error names the innermost one.
        if _has_nul(value):
            raise ValueError(NUL_MESSAGE)
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _takes_numbers_only(field.annotation):
                raise ValueError("a number, not a boolean")
        return value
