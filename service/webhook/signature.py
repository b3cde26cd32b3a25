"""The `Hedui-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.

The signed message is `f"{t}.{body}"` (the raw request body, bytes as sent), keyed with
the webhook's secret: the scheme Stripe uses. A receiver recomputes it, compares in
constant time, and refuses a timestamp too far from its clock (replays).
"""

import hashlib
import hmac


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300) -> bool:
    """Whether `header` is a valid signature of `body`, made within `tolerance_s` of `now`."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
