"""A connector's status in Statuspage's words, from its recent numbers (pure; no clock).

- `down`: the breaker is open, or the latest signal is a failed probe (a probe failed
  and no call has succeeded since), or fewer than `degraded_rate` of the calls succeeded.
- `degraded`: the breaker is half-open, or the success rate is below `operational_rate`,
  or p95 latency is over the connector's SLO; with fewer than `min_calls` calls, when the
  latest call failed (and nothing has succeeded since), or when the calls' p95 is over the
  SLO (a partner that answers, slowly, is not said to be operational beside the figure).
- `operational`: at least `min_calls` calls with a success rate of at least
  `operational_rate` and p95 within the SLO; or, with fewer calls, when the latest signal
  (a probe or a call) was a success and the calls were within the SLO.
- `unknown`: fewer than `min_calls` calls and no probe yet.

Success rate counts partner-attributable failures only (timeouts, transport errors,
5xx, 429, malformed answers); our own 4xx and connector bugs do not lower it. The calls
counted are those of the window since the breaker last closed: once a trial call (or a
probe) has shown the partner is back, the failures of the outage no longer hold its
status down.
"""

from dataclasses import dataclass
from datetime import datetime

from schemas.connector import BreakerState, HealthStatus


@dataclass(frozen=True)
class Thresholds:
    min_calls: int = 10
    operational_rate: float = 0.95
    degraded_rate: float = 0.5


@dataclass(frozen=True)
class Signals:
    calls: int
    failures: int
    p95_ms: float | None
    slo_p95_ms: float
    breaker: BreakerState
    last_probe_ok: bool | None = None
    last_probe_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    """The latest partner-attributable failure of a real call."""


def assess(signals: Signals, thresholds: Thresholds) -> tuple[HealthStatus, str]:  # noqa: PLR0911 - one return per rule, in the order they are documented
    """The status and a short reason an operator can read."""
    if signals.breaker is BreakerState.open:
        return HealthStatus.down, "circuit open"
    if signals.last_probe_ok is False and not _after(
        signals.last_success_at, signals.last_probe_at
    ):
        return HealthStatus.down, "health check failing"
    if signals.breaker is BreakerState.half_open:
        return HealthStatus.degraded, "circuit half-open: trial calls"
    if signals.calls < thresholds.min_calls:
        return _latest_signal(signals, thresholds)
    rate = 1 - signals.failures / signals.calls
    said = f"success rate {_percent(signals.calls - signals.failures, signals.calls)}"
    if rate < thresholds.degraded_rate:
        return HealthStatus.down, said
    if rate < thresholds.operational_rate:
        return HealthStatus.degraded, said
    if signals.p95_ms is not None and signals.p95_ms > signals.slo_p95_ms:
        return (
            HealthStatus.degraded,
            f"p95 {signals.p95_ms:g} ms over the {signals.slo_p95_ms:g} ms SLO",
        )
    return HealthStatus.operational, said


def _percent(part: int, whole: int) -> str:
    """`part` of `whole` in per cent, to a tenth, rounded down: a partner that failed a
    call is never shown at 100 % (`99.6%`), and a whole number is written whole (`95%`)."""
    tenths = part * 1000 // whole
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}%"


def _latest_signal(signals: Signals, thresholds: Thresholds) -> tuple[HealthStatus, str]:
    """Too few calls for a rate: the newest of the last probe, success and failure decides."""
    probe_ok = signals.last_probe_at if signals.last_probe_ok else None
    success = _newest(signals.last_success_at, probe_ok)
    if signals.last_failure_at is not None and not _after(success, signals.last_failure_at):
        return HealthStatus.degraded, "the latest call failed"
    if success is None:
        return HealthStatus.unknown, f"fewer than {thresholds.min_calls} calls and no check yet"
    if signals.calls and signals.p95_ms is not None and signals.p95_ms > signals.slo_p95_ms:
        return (
            HealthStatus.degraded,
            f"answering, slowly: p95 {signals.p95_ms:g} ms over the {signals.slo_p95_ms:g} ms SLO",
        )
    if success == signals.last_success_at:
        return HealthStatus.operational, "the latest call succeeded"
    return HealthStatus.operational, "health check passing"


def _newest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def _after(later: datetime | None, earlier: datetime | None) -> bool:
    return later is not None and earlier is not None and later > earlier
