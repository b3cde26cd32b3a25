"""The hash chain, as pure functions: what a link's hash is, and what a checkpoint signs.

`hash(n) = SHA-256(hash(n-1) || "\\n" || canonical(event))`, with 64 zeros before the first
link. `canonical` is the event's fields as compact JSON with sorted keys, times in UTC ISO
8601 with microseconds, so every process and `hedui audit verify` compute the same bytes.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Protocol

GENESIS = "0" * 64

FIELDS = (
    "id",
    "at",
    "actor_key_id",
    "actor_name",
    "role",
    "region",
    "action",
    "object_type",
    "object_id",
    "object_region",
    "request_id",
    "outcome",
    "detail",
)


class EventFields(Protocol):
    """What the chain covers of an event (an `AuditEvent` row has these)."""

    id: int
    at: datetime
    actor_key_id: str | None
    actor_name: str
    role: str
    region: str
    action: str
    object_type: str
    object_id: str | None
    object_region: str | None
    request_id: str | None
    outcome: str
    detail: str | None


def canonical(event: EventFields) -> bytes:
    values = {name: getattr(event, name) for name in FIELDS}
    values["at"] = event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_hash(prev_hash: str, event: EventFields) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical(event))
    return digest.hexdigest()


def checkpoint_message(seq: int, chain_hash: str) -> bytes:
    """What a checkpoint signs: the chain's length and head hash."""
    return f"hedui-audit-checkpoint:{seq}:{chain_hash}".encode("ascii")
