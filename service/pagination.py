"""Opaque keyset cursors: callers pass them back unchanged, never build them."""

import base64
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from service.errors import InvalidRequest

T = TypeVar("T")

# Row ids are UUIDs; a cursor's id is compared in SQL, so it must look like one of ours.
_ID = re.compile(r"[0-9A-Za-z_.:-]{1,128}")


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sent_in: str = "query") -> tuple[datetime, str]:
    """The position a cursor names; anything this service would not have issued is 422
    naming it where it was sent (`query`, or `body` for a search), never a 500 from the
    database (a naive timestamp, a NUL character, a number)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, item_id = json.loads(raw)
        timestamp = datetime.fromisoformat(created_at)
        # In UTC, as issued: an offset that pushes it past year 9999 (or before year 1)
        # is no timestamp of ours, and one the database could not take.
        utc = timestamp.astimezone(UTC) if timestamp.tzinfo is not None else None
    except (ValueError, TypeError, OverflowError) as exc:
        raise not_ours(sent_in) from exc
    if utc is None or not isinstance(item_id, str) or not _ID.fullmatch(item_id):
        raise not_ours(sent_in)
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
    rows: Sequence[T], limit: int, key: Callable[[T], tuple[datetime, str]]
) -> str | None:
    """The cursor after a page fetched with `limit + 1` rows, or None on the last page."""
    if len(rows) <= limit or limit == 0:
        return None
    return encode_cursor(*key(rows[limit - 1]))
