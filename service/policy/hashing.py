"""A content hash of policy parameters that is the same on every run and every machine."""

import hashlib
import json
from datetime import date
from decimal import Decimal

from schemas.policy import PolicyParameters


def content_hash(parameters: PolicyParameters) -> str:
    """SHA-256 of the canonical JSON of `parameters`.

    Canonical: keys sorted, no whitespace, UTF-8, decimals written without exponent or
    trailing zeros (so 0.24 and 0.240 hash alike), dates in ISO form. No floats anywhere.
    """
    canonical = json.dumps(
        _canonical(parameters.model_dump(mode="python")),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value
