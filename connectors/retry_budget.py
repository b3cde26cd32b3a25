"""A retry budget per connector: retries stay a small share of the calls made.

After Finagle's `RetryBudget` and gRPC's retry throttling. Over a sliding window (60 s by
default) the retries sent to one partner may be at most `ratio` (10 %) of the calls made
to it, plus a small fixed allowance (`min_retries`, 3 per window) so that a quiet
connector can still retry now and then. A call is one `connectors.http.request` (a
connector's own request: a query, a page, a poll); a retry is that request sent again
after a transient failure. A retry the budget refuses is not sent: the failure the last
attempt met surfaces at once. So a partner in trouble sees at most about 1.1 times its
usual traffic, never `max_attempts` times.

Counts are kept in one-second slots of the clock: the window is the current second and
the `window_s - 1` seconds before it, and memory stays at `window_s` slots whatever the
rate. One budget serves every fetch of its connector in the process; it lives on the event
loop (no locks).
"""

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Slot:
    second: int
    calls: int = 0
    retries: int = 0


class RetryBudget:
    def __init__(
        self,
        connector: str,
        *,
        ratio: float = 0.1,
        min_retries: int = 3,
        window_s: int = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError("ratio must be within 0..1")
        if min_retries < 0 or window_s < 1:
            raise ValueError("min_retries must be >= 0 and window_s >= 1")
        self.connector = connector
        self.ratio = ratio
        self.min_retries = min_retries
        self.window_s = window_s
        self.clock = clock
        self._slots: deque[_Slot] = deque()
        self._calls = 0
        self._retries = 0

    def record_call(self) -> None:
        """A call is about to be sent for the first time: it adds to what may be retried."""
        self._current().calls += 1
        self._calls += 1

    def try_retry(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        slot = self._current()
        if self._retries + 1 > self.ratio * self._calls + self.min_retries:
            return False
        slot.retries += 1
        self._retries += 1
        return True

    @property
    def calls(self) -> int:
        """Calls within the window."""
        self._current()
        return self._calls

    @property
    def retries(self) -> int:
        """Retries within the window."""
        self._current()
        return self._retries

    def _current(self) -> _Slot:
        """The slot of the current second, once the slots that left the window are gone."""
        second = int(self.clock() // 1)
        oldest = second - self.window_s + 1
        while self._slots and self._slots[0].second < oldest:
            gone = self._slots.popleft()
            self._calls -= gone.calls
            self._retries -= gone.retries
        if not self._slots or self._slots[-1].second < second:
            self._slots.append(_Slot(second))
        return self._slots[-1]
