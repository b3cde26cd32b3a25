"""RFC 9457 problem details."""

from collections.abc import Iterable, Mapping, Sequence
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


DUPLICATE_MEMBER = "a member named twice: "
"""How a JSON body naming a member twice is refused (the name follows)."""


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[ProblemError]:
    """pydantic's validation errors as problem errors: only location and message (its
    `input` would echo the ID numbers and names the caller sent), without the prefix
    pydantic puts before the messages our own validators raise."""
    problems = []
    for error in errors:
        duplicate = _duplicate_member(error)
        if duplicate is not None:
            problems.append(ProblemError(loc=["body"], msg=duplicate))
            continue
        problems.append(
            ProblemError(
                loc=list(error.get("loc", ())),
                msg=str(error.get("msg", "")).removeprefix("Value error, "),
            )
        )
    return problems


def _duplicate_member(error: Mapping[str, Any]) -> str | None:
    """A body that decodes but names a member twice: which (FastAPI's own message for every
    decoding error is "JSON decode error", at a byte the decoder did not know here)."""
    if error.get("type") != "json_invalid":
        return None
    why = str((error.get("ctx") or {}).get("error", ""))
    return why if why.startswith(DUPLICATE_MEMBER) else None


def unreadable_body_error(cause: BaseException) -> ProblemError:
    """Why a JSON body could not even be decoded (`cause`: what the decoder raised), named
    at the body (and at the byte where decoding failed, when known)."""
    if isinstance(cause, UnicodeDecodeError):
        return ProblemError(loc=["body", cause.start], msg="not UTF-8 encoded JSON")
    if isinstance(cause, RecursionError):
        return ProblemError(loc=["body"], msg="JSON nested too deeply")
    return ProblemError(loc=["body"], msg="not valid JSON")


def summary(errors: Sequence[ProblemError]) -> str | None:
    """A validation problem's `detail`: where the first error is, then why."""
    if not errors:
        return None
    first = errors[0]
    return f"{'.'.join(map(str, first.loc))}: {first.msg}"
