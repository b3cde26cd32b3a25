"""The sandbox's own clock: real time plus an offset that tests may move forward.

Only the partners' notion of time moves (a bank inquiry's processing time, how long an
answer is kept): hedui's own clock is untouched. So a bank that takes five minutes to
answer can be proven in a second: submit, advance the sandbox clock by 300 s, poll.
"""

import time
from collections.abc import Callable


class SandboxClock:
    def __init__(self, source: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self.offset_s = 0.0
        """How far the sandbox's time is ahead of real time."""

    def now(self) -> float:
        """Monotonic seconds, as the agencies see them."""
        return self._source() + self.offset_s

    def advance(self, seconds: float) -> float:
        """Move the sandbox's time forward (never back); the new offset."""
        self.offset_s += max(seconds, 0.0)
        return self.offset_s

    def reset(self) -> None:
        self.offset_s = 0.0
