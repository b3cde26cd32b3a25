"""A circuit breaker per connector, with resilience4j's semantics.

Why not a library: `purgatory` (the maintained asyncio breaker) opens after N consecutive
failures only, keeps a fixed open time, lets exactly one probe through and stores its state
in memory or Redis. hedui needs a failure-rate window, an open time that doubles while
probes fail, several probes, and state shared through the service's own database. The
machine below is small and pure (the clock is an argument), so it is tested exhaustively.

Closed: every call goes through; the outcomes of the last `window` calls are kept. The
breaker opens when at least `min_calls` are in the window and at least `failure_rate` of
them failed, or after `consecutive` failures in a row.
Open: calls are refused until `open_until`; then the breaker is half-open.
Half-open: up to `half_open_calls` trial calls go through at once. The first that succeeds
closes the breaker (with a fresh window and the open time reset); the first that fails
opens it again for twice the previous time, up to `open_max_s`.

Only partner-attributable failures are recorded as failures; the caller decides which.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from schemas.connector import BreakerState


@dataclass(frozen=True)
class BreakerPolicy:
    window: int = 20
    min_calls: int = 10
    failure_rate: float = 0.5
    consecutive: int = 5
    open_s: float = 30.0
    open_max_s: float = 300.0
    half_open_calls: int = 3

    def __post_init__(self) -> None:
        if not (1 <= self.min_calls <= self.window):
            raise ValueError("min_calls must be between 1 and window")
        if not (0 < self.failure_rate <= 1):
            raise ValueError("failure_rate must be in (0, 1]")
        if not (1 <= self.half_open_calls <= 3):
            raise ValueError("half_open_calls must be 1, 2 or 3")
        if self.consecutive < 1 or self.open_s <= 0 or self.open_max_s < self.open_s:
            raise ValueError("consecutive ≥ 1 and 0 < open_s ≤ open_max_s")


class Admission(Enum):
    call = "call"
    """Closed: call the partner."""
    trial = "trial"
    """Half-open: call the partner as one of the trial calls; report back with `settle`."""
    refused = "refused"
    """Open, or half-open with every trial slot taken: fail fast."""


@dataclass
class Breaker:
    """One connector's breaker. Not thread-safe; one event loop owns it."""

    policy: BreakerPolicy
    state: BreakerState = BreakerState.closed
    open_until: float | None = None
    """While open: when trial calls may start (epoch seconds)."""
    open_s: float = 0.0
    """How long the last opening lasted; the next one doubles it."""
    outcomes: deque[bool] = field(default_factory=deque)
    """True = failure, newest last; closed state only."""
    consecutive_failures: int = 0
    trials: int = 0
    """Trial calls in flight (half-open)."""
    version: int = 0
    """Version of the shared copy this state was last written to or read from."""
    changed: bool = False
    """A transition happened here since; the shared copy must be updated."""
    reason: str | None = None
    """Why the last transition here happened ("5 failures in a row", "trial call
    failed"), for the breaker's events."""

    def admit(self, now: float) -> Admission:
        if self.state is BreakerState.open:
            if self.open_until is not None and now < self.open_until:
                return Admission.refused
            self._transition(BreakerState.half_open, "open period over: trial calls go through")
        if self.state is BreakerState.half_open:
            if self.trials >= self.policy.half_open_calls:
                return Admission.refused
            self.trials += 1
            return Admission.trial
        return Admission.call

    def record(self, admission: Admission, *, failed: bool | None, now: float) -> None:
        """The result of an admitted call; `failed=None` means "says nothing" (our own error).

        A trial's result decides the half-open state; a plain call's result counts in the
        window only while the breaker is still closed (a late answer from before an opening
        must not reopen or close anything).
        """
        if admission is Admission.refused:
            return
        if admission is Admission.trial:
            self.trials = max(0, self.trials - 1)
            if self.state is not BreakerState.half_open or failed is None:
                return
            if failed:
                self._open(now, self.open_s * 2, "trial call failed")
            else:
                self._close("trial call succeeded")
            return
        if self.state is not BreakerState.closed or failed is None:
            return
        self.outcomes.append(failed)
        while len(self.outcomes) > self.policy.window:
            self.outcomes.popleft()
        self.consecutive_failures = self.consecutive_failures + 1 if failed else 0
        reason = self._why_open()
        if reason is not None:
            self._open(now, self.policy.open_s, reason)

    def failure_rate(self) -> float | None:
        if not self.outcomes:
            return None
        return sum(self.outcomes) / len(self.outcomes)

    def adopt(
        self, state: BreakerState, open_until: float | None, open_s: float, version: int
    ) -> None:
        """Take over the shared state another process wrote (it is newer than ours)."""
        if state is not self.state:
            self.outcomes.clear()
            self.consecutive_failures = 0
            if state is not BreakerState.half_open:
                self.trials = 0
        self.state, self.open_until, self.open_s, self.version = state, open_until, open_s, version
        self.changed = False

    def reset(self) -> None:
        self._close("reset")

    def _why_open(self) -> str | None:
        """Why the breaker must open now, in a few words; None while it need not."""
        if self.consecutive_failures >= self.policy.consecutive:
            return f"{self.consecutive_failures} failures in a row"
        calls = len(self.outcomes)
        failures = sum(self.outcomes)
        if calls >= self.policy.min_calls and failures >= self.policy.failure_rate * calls:
            return f"failure rate {round(100 * failures / calls)} % of the last {calls} calls"
        return None

    def _open(self, now: float, duration: float, reason: str) -> None:
        self.open_s = min(max(duration, self.policy.open_s), self.policy.open_max_s)
        self.open_until = now + self.open_s
        self._transition(BreakerState.open, reason)

    def _close(self, reason: str) -> None:
        self.open_until = None
        self.open_s = 0.0
        self._transition(BreakerState.closed, reason)

    def _transition(self, state: BreakerState, reason: str | None = None) -> None:
        self.reason = reason
        self.outcomes.clear()
        self.consecutive_failures = 0
        if state is not BreakerState.half_open:
            self.trials = 0
        self.state = state
        self.changed = True
