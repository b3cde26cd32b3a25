"""Opaque keyset cursors: callers pass them back unchanged, never build them."""

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from service.errors import InvalidRequest

T = TypeVar("T")

# Row ids are UUIDs; a cursor's id is compared in SQL, so it must look like one of ours.
_ID = re.compile(r"[0-9A-Za-z_.:-]{1,128}")


_PAGING = frozenset({"cursor", "limit"})


def listing(name: str, filters: BaseModel | Mapping[str, object] | None = None) -> str:
    """What a cursor pages through: the list (`name`: its endpoint, and the parent it
    belongs to) and its filters, the cursor and the page size left out. A cursor carries a
    short digest of it, so one from another list, or from the same list filtered
    otherwise, is refused rather than quietly starting another list at its position."""
    if isinstance(filters, BaseModel):
        values: object = filters.model_dump(exclude=set(_PAGING))
    else:
        values = {key: value for key, value in (filters or {}).items() if key not in _PAGING}
    text = json.dumps([name, values], sort_keys=True, separators=(",", ":"), default=_same)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _same(value: object) -> str:
    """A filter value as the list reads it: a moment in UTC, whatever offset it was written
    with (`2026-12-05T00:00:00+08:00` is `2026-12-04T16:00:00Z`), an enum by its value."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    return str(getattr(value, "value", value))


def encode_cursor(created_at: datetime, item_id: str, listed: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id, listed], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, listed: str, sent_in: str = "query") -> tuple[datetime, str]:
    """The position a cursor names in the list `listed` (`listing(...)`); anything this
    service would not have issued for that list and those filters is 422 naming it where it
    was sent (`query`, or `body` for a search), never a 500 from the database (a naive
    timestamp, a NUL character, a number)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, item_id, issued_for = json.loads(raw)
        timestamp = datetime.fromisoformat(created_at)
        # In UTC, as issued: an offset that pushes it past year 9999 (or before year 1)
        # is no timestamp of ours, and one the database could not take.
        utc = timestamp.astimezone(UTC) if timestamp.tzinfo is not None else None
    except (ValueError, TypeError, OverflowError) as exc:
        raise not_ours(sent_in) from exc
    if utc is None or not isinstance(item_id, str) or not _ID.fullmatch(item_id):
        raise not_ours(sent_in)
    if issued_for != listed:
        raise InvalidRequest.at(
            [sent_in, "cursor"],
            "a cursor of another list, or of this list with other filters: page on with "
            "the filters it was issued with, or start again without a cursor",
        )
    return utc, item_id


def not_ours(sent_in: str = "query") -> InvalidRequest:
    return InvalidRequest.at([sent_in, "cursor"], "not a cursor this service issued")


def newer_first_after(
    timestamp: InstrumentedAttribute[Any],
    item_id: InstrumentedAttribute[Any],
    after: tuple[datetime, str],
) -> ColumnElement[bool]:
    """Rows strictly after `after` in (timestamp, id) descending order: the keyset filter."""
    last_timestamp, last_id = after
    return or_(timestamp < last_timestamp, and_(timestamp == last_timestamp, item_id < last_id))


def next_cursor(
    rows: Sequence[T], limit: int, key: Callable[[T], tuple[datetime, str]], listed: str
) -> str | None:
    """The cursor after a page of the list `listed` fetched with `limit + 1` rows, or None
    on the last page."""
    if len(rows) <= limit or limit == 0:
        return None
    return encode_cursor(*key(rows[limit - 1]), listed)
