"""Bank inquiries in flight: submitted, processing for a while, then done, then forgotten."""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

RETENTION_S = 86_400.0
"""How long a finished inquiry can still be polled: a day, as a real bank keeps an answer
until it is fetched, and at least as long as hedui's longest wait between two collects of
a parked source (15 minutes by default), so a collect never finds the answer forgotten.
Load tests submit millions: `CAPACITY` bounds what is held."""
CAPACITY = 100_000
"""Hard cap on inquiries held; the oldest go first."""


@dataclass(frozen=True, slots=True)
class Inquiry:
    id_numbers: tuple[str, ...]
    ready_at: float
    expires_at: float


class Inquiries:
    """Open inquiries by id, oldest first, so expiry only ever looks at the front."""

    def __init__(
        self,
        retention_s: float = RETENTION_S,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retention_s = retention_s
        self._capacity = capacity
        self._clock = clock
        self._open: dict[str, Inquiry] = {}

    def __len__(self) -> int:
        return len(self._open)

    def submit(self, id_numbers: tuple[str, ...], processing_s: float) -> str:
        now = self._clock()
        self._prune(now)
        inquiry_id = f"inq_{secrets.token_hex(8)}"
        ready_at = now + processing_s
        self._open[inquiry_id] = Inquiry(id_numbers, ready_at, ready_at + self._retention_s)
        return inquiry_id

    def get(self, inquiry_id: str) -> tuple[Inquiry, bool] | None:
        """The inquiry and whether it is done, or None when unknown or expired."""
        inquiry = self._open.get(inquiry_id)
        now = self._clock()
        if inquiry is None or inquiry.expires_at <= now:
            return None
        return inquiry, inquiry.ready_at <= now

    def _prune(self, now: float) -> None:
        # Dicts keep insertion order: pop from the front while it is expired or over cap.
        while self._open:
            oldest_id = next(iter(self._open))
            oldest = self._open[oldest_id]
            if oldest.expires_at > now and len(self._open) < self._capacity:
                return
            del self._open[oldest_id]
