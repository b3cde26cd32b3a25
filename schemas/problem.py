"""RFC 9457 problem details."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from schemas.identity import mask_name


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
        problems.append(ProblemError(loc=_location(error), msg=_message(error)))
    return problems


SHOWN_NAME_CHARACTERS = 64
"""The most of a caller's member or parameter name an answer repeats."""


def shown_name(name: str) -> str:
    """A member or parameter name the caller sent, as an answer repeats it. It is the
    caller's text and may be anything, a person's name too: one in other than ASCII is
    masked as a name is (`张*`), and a long one shortened. (ID numbers in it are redacted
    with every answer's text.)"""
    if not name.isascii():
        name = mask_name(name)
    if len(name) > SHOWN_NAME_CHARACTERS:
        return name[:SHOWN_NAME_CHARACTERS] + "…"
    return name


def _location(error: Mapping[str, Any]) -> list[str | int]:
    """pydantic's location; the name of a member that is not one of ours is shown as
    `shown_name` says."""
    loc = list(error.get("loc", ()))
    if error.get("type") == "extra_forbidden" and loc:
        last = loc[-1]
        if isinstance(last, str):
            loc[-1] = shown_name(last)
    return loc


_PATTERN_MESSAGES = {
    "^[0-9]{6}$": "must be 6 digits: a GB/T 2260 county code, such as 530102",
    "^[0-9]{9}$": "must be 9 digits: a township code, its county's 6 and 3 more, such as 530102001",
    "^([0-9]{2}|[0-9]{4}|[0-9]{6})?$": "must be a region prefix of 2, 4 or 6 digits (53, 5301, "
    "530102), or empty for every region",
}
"""What the codes' patterns mean, said instead of the pattern itself."""


def _message(error: Mapping[str, Any]) -> str:
    """pydantic's message, or, where it only names a regular expression or a type's
    internals, what the caller should send."""
    kind, loc = error.get("type"), tuple(error.get("loc", ()))
    if kind == "missing" and loc == ("body",):
        return "a JSON body is required (Content-Type: application/json)"
    if kind == "json_invalid":
        # The decoder's own words (`Expecting ',' delimiter`), which never quote the body,
        # and where: FastAPI's message alone says "JSON decode error" at a bare number.
        why = str((error.get("ctx") or {}).get("error", "")).strip().removesuffix(" at")
        if not why:
            return "not valid JSON"
        # The offset counts from 0, as `loc` does: its last member, named.
        at = f" at offset {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        return f"not valid JSON: {why}{at}"
    if kind == "timezone_aware":
        return "must give its UTC offset: 2026-12-04T10:00:00+08:00, or Z for UTC"
    if kind == "string_pattern_mismatch":
        known = _PATTERN_MESSAGES.get(str((error.get("ctx") or {}).get("pattern", "")))
        if known is not None:
            return known
    return str(error.get("msg", "")).removeprefix("Value error, ")


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
