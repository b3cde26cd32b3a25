"""Counting calls into buckets, and percentiles from latency buckets."""

from hypothesis import given
from hypothesis import strategies as st

from schemas.connector import CallOutcome
from service.connector.stats import LATENCY_BOUNDS_MS, Bucket, merged, percentile


def test_outcomes_are_counted_where_they_belong() -> None:
    bucket = Bucket()
    bucket.add_call(CallOutcome.ok, 40, attempts=1)
    bucket.add_call(CallOutcome.unavailable, 900, attempts=3)
    bucket.add_call(CallOutcome.malformed, 30, attempts=1)
    bucket.add_call(CallOutcome.rejected, 20, attempts=1)
    bucket.add_call(CallOutcome.error, 1, attempts=0)
    bucket.add_call(CallOutcome.circuit_open, 0, attempts=0)
    bucket.add_call(CallOutcome.paused, 0, attempts=0)
    assert (bucket.calls, bucket.failures, bucket.errors, bucket.refused) == (5, 2, 2, 2)
    assert bucket.attempts == 6


def test_percentiles_are_bucket_upper_bounds() -> None:
    bucket = Bucket()
    for _ in range(90):
        bucket.add_call(CallOutcome.ok, 40, attempts=1)
    for _ in range(10):
        bucket.add_call(CallOutcome.ok, 1800, attempts=1)
    assert percentile(bucket.latency, 0.5) == 50
    assert percentile(bucket.latency, 0.95) == 2000
    assert percentile(Bucket().latency, 0.95) is None


@given(st.lists(st.floats(min_value=0, max_value=100_000), min_size=1, max_size=200))
def test_percentile_bounds_the_true_value(latencies: list[float]) -> None:
    """The estimate is never below the true percentile (up to the last bound)."""
    bucket = Bucket()
    for value in latencies:
        bucket.add_call(CallOutcome.ok, value, attempts=1)
    ordered = sorted(latencies)
    for q in (0.5, 0.95, 0.99):
        true = ordered[max(0, -(-len(ordered) * q // 1) - 1).__int__()]
        estimate = percentile(bucket.latency, q)
        assert estimate is not None
        assert estimate >= min(true, LATENCY_BOUNDS_MS[-1])


def test_merging_adds_everything() -> None:
    a, b = Bucket(), Bucket()
    a.add_call(CallOutcome.ok, 40, attempts=1)
    b.add_call(CallOutcome.timeout, 5000, attempts=2)
    b.add_probe(ok=False)
    total = merged([a, b])
    assert (total.calls, total.failures, total.attempts, total.probe_failures) == (2, 1, 3, 1)
    assert sum(total.latency) == 2
