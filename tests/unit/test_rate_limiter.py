"""The per-key rate limiter: a fixed one-minute window per key id."""

from hypothesis import given
from hypothesis import strategies as st

from service.admission import SHED_LOG_EVERY_S, WINDOW_S, Intake, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_admits_the_quota_then_refuses_until_it_ends() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert [limiter.take("k1").remaining for _ in range(2)] == [1, 0]
    refused = limiter.take("k1")
    assert not refused.allowed
    assert refused.reset_s == WINDOW_S
    assert limiter.take("k2").allowed  # each key its own quota
    clock.now += 45.5
    assert limiter.take("k1").reset_s == 15
    clock.now += 14.5
    fresh = limiter.take("k1")
    assert fresh.allowed
    assert fresh.remaining == 1


@given(st.integers(1, 20), st.lists(st.floats(0, 30), max_size=60))
def test_never_more_than_the_quota_in_one_window(quota: int, gaps: list[float]) -> None:
    clock = Clock()
    limiter = RateLimiter(quota, clock=clock)
    start, admitted = None, 0
    for gap in gaps:
        clock.now += gap
        if start is None or clock.now - start >= WINDOW_S:
            start, admitted = clock.now, 0  # a window begins with the first take after one
        taken = limiter.take("k")
        assert 1 <= taken.reset_s <= WINDOW_S
        admitted += taken.allowed
        assert admitted <= quota
        assert taken.remaining == max(0, quota - admitted)


def test_a_spent_key_is_known_by_its_token_without_a_lookup() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.spent("hd_one") is None  # never admitted: unknown, left to the lookup
    limiter.take("k1")
    limiter.learn("hd_one", "k1")
    assert limiter.spent("hd_one") is None  # quota left
    limiter.take("k1")
    refused = limiter.spent("hd_one")
    assert refused is not None
    assert (refused.allowed, refused.remaining, refused.reset_s) == (False, 0, WINDOW_S)
    assert limiter.spent("hd_two") is None  # another token, even of the same key
    clock.now += WINDOW_S
    assert limiter.spent("hd_one") is None  # a new window
    limiter.take("k1")  # a window rolling over forgets every ended one, tokens too
    assert limiter._keys == {}


@given(st.integers(1, 5), st.lists(st.floats(0, 30), max_size=40))
def test_the_door_never_refuses_what_take_would_admit(quota: int, gaps: list[float]) -> None:
    """`spent` (at the door) says 429 only when `take` (past it) would say it too."""
    clock = Clock()
    limiter = RateLimiter(quota, clock=clock)
    for gap in gaps:
        clock.now += gap
        door = limiter.spent("hd_token")
        taken = limiter.take("k")
        limiter.learn("hd_token", "k")
        if door is not None:
            assert not taken.allowed
            assert door.reset_s == taken.reset_s


class TestShedNotes:
    def test_a_flood_of_refusals_is_one_line_per_period_with_its_count(self) -> None:
        now = [0.0]
        intake = Intake(clock=lambda: now[0])
        assert intake.note_shed("saturated") == 1  # the first one is told at once
        assert [intake.note_shed("saturated") for _ in range(99)] == [None] * 99
        assert intake.note_shed("rate_limited") == 1  # each reason on its own
        now[0] += SHED_LOG_EVERY_S
        assert intake.note_shed("saturated") == 100  # the 99 held back, and this one

    def test_seats_are_released_once(self) -> None:
        intake = Intake()
        seat = intake.reserve()
        other = intake.reserve()
        assert intake.pending == 2
        seat.release()
        seat.release()
        assert intake.pending == 1
        other.release()
        assert intake.pending == 0
