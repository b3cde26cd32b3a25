"""The retry budget: retries to one partner stay within 10 % of its calls plus a small
allowance over a sliding window, whatever the sequence of calls and retries."""

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.retry_budget import RetryBudget


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


def budget(clock: Clock, **values: float) -> RetryBudget:
    return RetryBudget("bank", clock=clock, **values)  # type: ignore[arg-type]


def test_a_quiet_connector_may_still_retry_its_allowance() -> None:
    """With one call in the window, the fixed allowance alone decides: 3 retries, then none."""
    clock = Clock()
    retry_budget = budget(clock)
    retry_budget.record_call()
    assert [retry_budget.try_retry() for _ in range(4)] == [True, True, True, False]
    assert retry_budget.retries == 3


def test_retries_grow_with_calls_at_one_in_ten() -> None:
    """100 calls earn 10 retries beyond the allowance of 3."""
    clock = Clock()
    retry_budget = budget(clock)
    for _ in range(100):
        retry_budget.record_call()
    granted = sum(retry_budget.try_retry() for _ in range(50))
    assert granted == 13


def test_the_window_slides_and_forgets_old_retries() -> None:
    """Retries spent a window ago are available again; calls of then no longer count."""
    clock = Clock()
    retry_budget = budget(clock, window_s=60)
    retry_budget.record_call()
    while retry_budget.try_retry():
        pass
    clock.now += 59
    assert not retry_budget.try_retry()  # still within the same 60 s
    clock.now += 1
    assert (retry_budget.calls, retry_budget.retries) == (0, 0)
    assert retry_budget.try_retry()


def test_a_refused_retry_takes_nothing() -> None:
    clock = Clock()
    retry_budget = budget(clock, min_retries=0)
    for _ in range(9):
        retry_budget.record_call()
    assert not retry_budget.try_retry()  # 0.9 retries earned: not one whole
    retry_budget.record_call()
    assert retry_budget.try_retry()  # the tenth call earns one
    assert retry_budget.retries == 1


@pytest.mark.parametrize(
    "values", [{"ratio": -0.1}, {"ratio": 1.5}, {"min_retries": -1}, {"window_s": 0}]
)
def test_nonsense_settings_are_refused(values: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        budget(Clock(), **values)


EVENTS = st.lists(
    st.tuples(st.floats(min_value=0, max_value=20, allow_nan=False), st.booleans()),
    max_size=300,
)


@given(
    events=EVENTS,
    ratio=st.sampled_from([0.0, 0.1, 0.25, 1.0]),
    min_retries=st.integers(min_value=0, max_value=5),
    window_s=st.integers(min_value=1, max_value=120),
)
def test_retries_never_exceed_the_share_of_calls_plus_the_allowance(
    events: list[tuple[float, bool]], ratio: float, min_retries: int, window_s: int
) -> None:
    """Over any sequence: at every retry, the retries within the window (the current second
    and the `window_s - 1` before it) are at most `ratio` × the calls within it plus
    `min_retries`; and a retry is refused only when granting it would break that bound."""
    clock = Clock()
    retry_budget = RetryBudget(
        "bank", ratio=ratio, min_retries=min_retries, window_s=window_s, clock=clock
    )
    calls: list[int] = []  # the second of each call, and of each granted retry
    retries: list[int] = []
    for pause, is_call in events:
        clock.now += pause
        second = int(clock.now // 1)
        if is_call:
            retry_budget.record_call()
            calls.append(second)
            continue
        in_window = second - window_s + 1
        calls_now = sum(1 for s in calls if s >= in_window)
        retries_now = sum(1 for s in retries if s >= in_window)
        if retry_budget.try_retry():
            retries.append(second)
            assert retries_now + 1 <= ratio * calls_now + min_retries
        else:
            assert retries_now + 1 > ratio * calls_now + min_retries
