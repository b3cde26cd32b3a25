"""Statuspage words from a connector's numbers."""

from datetime import UTC, datetime, timedelta

import pytest

from schemas.connector import BreakerState, HealthStatus
from service.connector.status import Signals, Thresholds, assess

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def signals(**overrides: object) -> Signals:
    values: dict[str, object] = {
        "calls": 100,
        "failures": 0,
        "p95_ms": 200.0,
        "slo_p95_ms": 2000.0,
        "breaker": BreakerState.closed,
    }
    values.update(overrides)
    return Signals(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, HealthStatus.operational),
        ({"failures": 5}, HealthStatus.operational),  # 95 % exactly
        ({"failures": 6}, HealthStatus.degraded),
        ({"failures": 50}, HealthStatus.degraded),  # 50 % exactly
        ({"failures": 51}, HealthStatus.down),
        ({"p95_ms": 2500.0}, HealthStatus.degraded),
        ({"breaker": BreakerState.half_open}, HealthStatus.degraded),
        ({"breaker": BreakerState.open}, HealthStatus.down),
        ({"calls": 9, "failures": 0}, HealthStatus.unknown),
        ({"calls": 0, "last_probe_ok": True, "last_probe_at": T0}, HealthStatus.operational),
        ({"calls": 0, "last_probe_ok": False, "last_probe_at": T0}, HealthStatus.down),
    ],
)
def test_status(overrides: dict[str, object], expected: HealthStatus) -> None:
    status, reason = assess(signals(**overrides), Thresholds())
    assert status is expected, reason
    assert reason


def test_a_failing_probe_is_overruled_by_a_later_successful_call() -> None:
    status, _ = assess(
        signals(
            last_probe_ok=False,
            last_probe_at=T0,
            last_success_at=T0 + timedelta(seconds=1),
        ),
        Thresholds(),
    )
    assert status is HealthStatus.operational


def test_thresholds_are_configurable() -> None:
    strict = Thresholds(min_calls=5, operational_rate=0.99, degraded_rate=0.9)
    assert assess(signals(failures=2), strict)[0] is HealthStatus.degraded
    assert assess(signals(failures=11), strict)[0] is HealthStatus.down
    assert assess(signals(calls=5), strict)[0] is HealthStatus.operational


@pytest.mark.parametrize(
    ("moments", "expected"),
    [
        # With too few calls for a rate, the newest signal decides.
        ({"last_success_at": T0}, (HealthStatus.operational, "the latest call succeeded")),
        ({"last_failure_at": T0}, (HealthStatus.degraded, "the latest call failed")),
        (
            {"last_success_at": T0, "last_failure_at": T0 + timedelta(seconds=1)},
            (HealthStatus.degraded, "the latest call failed"),
        ),
        (
            {"last_failure_at": T0, "last_success_at": T0 + timedelta(seconds=1)},
            (HealthStatus.operational, "the latest call succeeded"),
        ),
        (
            {
                "last_failure_at": T0,
                "last_probe_ok": True,
                "last_probe_at": T0 + timedelta(seconds=1),
            },
            (HealthStatus.operational, "health check passing"),
        ),
        (
            {
                "last_probe_ok": True,
                "last_probe_at": T0,
                "last_failure_at": T0 + timedelta(seconds=1),
            },
            (HealthStatus.degraded, "the latest call failed"),
        ),
    ],
)
def test_with_few_calls_the_latest_signal_decides(
    moments: dict[str, object], expected: tuple[HealthStatus, str]
) -> None:
    assert assess(signals(calls=3, failures=1, **moments), Thresholds()) == expected


@pytest.mark.parametrize(
    "moments",
    [
        {"last_success_at": T0},
        {"last_probe_ok": True, "last_probe_at": T0},
        {"last_failure_at": T0, "last_success_at": T0 + timedelta(seconds=1)},
    ],
)
def test_with_few_calls_a_slow_partner_is_degraded_not_operational(
    moments: dict[str, object],
) -> None:
    """Three calls of 3 s each against a 2 s SLO: the partner answers, but the card must not
    say operational beside a p95 over the SLO."""
    status, reason = assess(signals(calls=3, failures=0, p95_ms=5000.0, **moments), Thresholds())
    assert status is HealthStatus.degraded
    assert reason == "answering, slowly: p95 5000 ms over the 2000 ms SLO"


def test_with_no_calls_a_passing_check_is_operational_whatever_the_window_held() -> None:
    """No call to judge latency by: a passing health check speaks for the partner."""
    status, _ = assess(
        signals(calls=0, p95_ms=None, last_probe_ok=True, last_probe_at=T0), Thresholds()
    )
    assert status is HealthStatus.operational


def test_an_open_breaker_is_down_whatever_the_latest_signal() -> None:
    later = T0 + timedelta(seconds=1)
    status, reason = assess(
        signals(
            breaker=BreakerState.open,
            last_success_at=later,
            last_probe_ok=True,
            last_probe_at=later,
        ),
        Thresholds(),
    )
    assert (status, reason) == (HealthStatus.down, "circuit open")


@pytest.mark.parametrize(
    ("calls", "failures", "said"),
    [
        (100, 0, "success rate 100%"),
        (250, 1, "success rate 99.6%"),  # 99.6 %, not rounded up to 100
        (10_000, 1, "success rate 99.9%"),  # 99.99 %: still short of 100
        (100, 5, "success rate 95%"),
        (30, 20, "success rate 33.3%"),
        (100, 100, "success rate 0%"),
    ],
)
def test_a_rate_is_said_to_a_tenth_rounded_down(calls: int, failures: int, said: str) -> None:
    """A partner that failed a call is never said to succeed at 100 %."""
    _, reason = assess(signals(calls=calls, failures=failures), Thresholds())
    assert reason == said
