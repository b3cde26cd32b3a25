"""The circuit breaker's state machine, driven with an explicit clock."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.connector import BreakerState
from service.connector.breaker import Admission, Breaker, BreakerPolicy

POLICY = BreakerPolicy()  # 50 % of the last 20 (min 10), or 5 in a row; 30 s doubling to 300 s


def calls(breaker: Breaker, outcomes: str, now: float = 0.0) -> None:
    """`outcomes`: one letter per call, F = partner failure, S = success."""
    for letter in outcomes:
        admission = breaker.admit(now)
        assert admission is Admission.call
        breaker.record(admission, failed=letter == "F", now=now)


def opened(now: float = 0.0) -> Breaker:
    breaker = Breaker(POLICY)
    calls(breaker, "FFFFF", now)
    assert breaker.state is BreakerState.open
    return breaker


class TestOpening:
    def test_five_consecutive_failures_open(self) -> None:
        breaker = Breaker(POLICY)
        calls(breaker, "FFFF")
        assert breaker.state is BreakerState.closed
        calls(breaker, "F", now=7.0)
        assert breaker.state is BreakerState.open
        assert breaker.open_until == 37.0

    def test_a_success_resets_the_run_of_failures(self) -> None:
        breaker = Breaker(POLICY)
        calls(breaker, "FFFFSFFFF")
        assert breaker.state is BreakerState.closed

    def test_half_of_ten_calls_failing_opens(self) -> None:
        breaker = Breaker(POLICY)
        calls(breaker, "FSFSFSFSF")  # 5 of 9: below the minimum of 10 calls
        assert breaker.state is BreakerState.closed
        calls(breaker, "S")  # 5 of 10 = 50 %
        assert breaker.state is BreakerState.open

    def test_rate_counts_only_the_last_twenty_calls(self) -> None:
        breaker = Breaker(POLICY)
        calls(breaker, "SS" + "SF" * 9)  # 9 failures in 20: 45 %
        assert breaker.state is BreakerState.closed
        # The oldest success slides out: 10 of the last 20 (of 21 calls in all, < 50 %).
        calls(breaker, "F")
        assert breaker.state is BreakerState.open

    def test_our_own_errors_say_nothing_about_the_partner(self) -> None:
        breaker = Breaker(POLICY)
        for _ in range(30):
            breaker.record(breaker.admit(0), failed=None, now=0)
        assert breaker.state is BreakerState.closed
        assert breaker.failure_rate() is None


class TestOpen:
    def test_refuses_until_its_time_is_up(self) -> None:
        breaker = opened(now=100.0)
        assert breaker.admit(129.9) is Admission.refused
        assert breaker.admit(130.0) is Admission.trial
        assert breaker.state is BreakerState.half_open

    def test_late_answer_from_before_the_opening_changes_nothing(self) -> None:
        breaker = Breaker(POLICY)
        early = breaker.admit(0)
        calls(breaker, "FFFFF")
        breaker.record(early, failed=False, now=1)
        assert breaker.state is BreakerState.open


class TestHalfOpen:
    def test_lets_three_trials_through_at_once(self) -> None:
        breaker = opened()
        admissions = [breaker.admit(30.0) for _ in range(4)]
        assert admissions == [Admission.trial] * 3 + [Admission.refused]

    def test_a_successful_trial_closes_and_resets_the_open_time(self) -> None:
        breaker = opened()
        trial = breaker.admit(30.0)
        breaker.record(trial, failed=False, now=30.5)
        assert breaker.state is BreakerState.closed
        calls(breaker, "FFFFF", now=40.0)
        assert breaker.open_until == 70.0  # 30 s again, not doubled

    def test_a_failed_trial_reopens_for_twice_as_long_up_to_five_minutes(self) -> None:
        breaker = opened()
        now = 0.0
        periods = []
        for _ in range(6):
            now = breaker.open_until or now
            trial = breaker.admit(now)
            assert trial is Admission.trial
            breaker.record(trial, failed=True, now=now)
            periods.append(breaker.open_s)
        assert periods == [60.0, 120.0, 240.0, 300.0, 300.0, 300.0]

    def test_a_cancelled_trial_frees_its_slot(self) -> None:
        breaker = opened()
        trials = [breaker.admit(30.0) for _ in range(3)]
        breaker.record(trials[0], failed=None, now=31.0)
        assert breaker.state is BreakerState.half_open
        assert breaker.admit(31.0) is Admission.trial


def test_policy_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="half_open_calls"):
        BreakerPolicy(half_open_calls=4)
    with pytest.raises(ValueError, match="min_calls"):
        BreakerPolicy(window=5, min_calls=10)


actions = st.lists(
    st.tuples(
        st.sampled_from(["call", "ok", "fail", "neutral", "wait"]),
        st.floats(min_value=0, max_value=400),
    ),
    max_size=120,
)


@given(actions)
def test_invariants_hold_whatever_happens(steps: list[tuple[str, float]]) -> None:
    """Trials never exceed the limit, the open time stays within bounds, and an open breaker
    whose time is not up never lets a call through."""
    breaker = Breaker(POLICY)
    now = 0.0
    pending: list[Admission] = []
    for action, amount in steps:
        if action == "wait":
            now += amount
        elif action == "call":
            before_state, until = breaker.state, breaker.open_until
            admission = breaker.admit(now)
            if before_state is BreakerState.open and until is not None and now < until:
                assert admission is Admission.refused
            if admission is not Admission.refused:
                pending.append(admission)
        elif pending:
            admission = pending.pop(0)
            failed = {"ok": False, "fail": True, "neutral": None}[action]
            breaker.record(admission, failed=failed, now=now)
        assert 0 <= breaker.trials <= POLICY.half_open_calls
        assert len(breaker.outcomes) <= POLICY.window
        if breaker.state is BreakerState.open:
            assert POLICY.open_s <= breaker.open_s <= POLICY.open_max_s
        if breaker.state is BreakerState.closed:
            assert breaker.consecutive_failures < POLICY.consecutive


class TestReasons:
    """Each transition says why, for the breaker's events."""

    def test_failures_in_a_row(self) -> None:
        assert opened().reason == "5 failures in a row"

    def test_failure_rate(self) -> None:
        breaker = Breaker(POLICY)
        calls(breaker, "FFFFSFFFFS")  # 8 of 10 (the least to judge a rate), never 5 in a row
        assert breaker.state is BreakerState.open
        assert breaker.reason == "failure rate 80 % of the last 10 calls"

    def test_trials(self) -> None:
        breaker = opened()
        trial = breaker.admit(31.0)
        assert breaker.state is BreakerState.half_open
        assert breaker.reason == "open period over: trial calls go through"
        breaker.record(trial, failed=True, now=31.0)
        assert (breaker.state, breaker.reason) == (BreakerState.open, "trial call failed")
        trial = breaker.admit(200.0)
        breaker.record(trial, failed=False, now=200.0)
        assert (breaker.state, breaker.reason) == (BreakerState.closed, "trial call succeeded")
