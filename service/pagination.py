"""Opaque keyset cursors: callers pass them back unchanged, never build them."""

import base64
import json
from datetime import datetime

from service.errors import InvalidRequest


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, item_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(item_id)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest.at(["query", "cursor"], "not a cursor this service issued") from exc
