"""Call counts per connector and time bucket, kept in memory until written to the database.

Every process writes its own rows (connector, bucket start, process), so writers never
contend; readers add up the rows of all processes. Latencies go into fixed buckets, from
which percentiles are estimated (the upper bound of the bucket holding the percentile,
like Prometheus' `histogram_quantile` without interpolation).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from schemas.connector import CallOutcome

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    10, 25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 20000, 60000,
)  # fmt: skip
"""Upper bounds of the latency buckets; one more bucket above the last holds the rest."""

PARTNER_FAILURES = frozenset({CallOutcome.unavailable, CallOutcome.timeout, CallOutcome.malformed})
"""Outcomes that count against a partner's success rate."""
BREAKER_FAILURES = frozenset({CallOutcome.unavailable, CallOutcome.timeout})
"""Outcomes the circuit breaker counts as failures (timeouts, transport errors, 5xx, 429)."""
BREAKER_NEUTRAL = frozenset({CallOutcome.rejected, CallOutcome.error})
"""Our own failures: they say nothing about the partner."""
REFUSED = frozenset({CallOutcome.circuit_open, CallOutcome.paused})


@dataclass
class Bucket:
    """Counts of one connector in one time bucket."""

    calls: int = 0
    failures: int = 0
    errors: int = 0
    refused: int = 0
    attempts: int = 0
    latency_ms_sum: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    probes: int = 0
    probe_failures: int = 0

    def add_call(self, outcome: CallOutcome, latency_ms: float, attempts: int) -> None:
        if outcome in REFUSED:
            self.refused += 1
            return
        self.calls += 1
        self.attempts += attempts
        if outcome in PARTNER_FAILURES:
            self.failures += 1
        elif outcome in BREAKER_NEUTRAL:
            self.errors += 1
        self.latency_ms_sum += latency_ms
        self.latency[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1

    def add_probe(self, ok: bool) -> None:
        self.probes += 1
        self.probe_failures += 0 if ok else 1

    def merge(self, other: Bucket) -> None:
        self.calls += other.calls
        self.failures += other.failures
        self.errors += other.errors
        self.refused += other.refused
        self.attempts += other.attempts
        self.latency_ms_sum += other.latency_ms_sum
        self.latency = [a + b for a, b in zip(self.latency, _padded(other.latency), strict=True)]
        self.probes += other.probes
        self.probe_failures += other.probe_failures


def _padded(counts: Sequence[int]) -> list[int]:
    size = len(LATENCY_BOUNDS_MS) + 1
    return [*counts[:size], *([0] * (size - len(counts)))]


def merged(buckets: Iterable[Bucket]) -> Bucket:
    total = Bucket()
    for bucket in buckets:
        total.merge(bucket)
    return total


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) of a latency histogram, as its bucket's upper bound; in
    the bucket above the last bound, that bound (60 s or more: a number JSON can carry,
    over any SLO all the same)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank and count:
            return LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
    return LATENCY_BOUNDS_MS[-1]
