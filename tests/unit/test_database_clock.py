"""The throttle's reading of the database's clock: NTP's way, from round trips."""

from hypothesis import given
from hypothesis import strategies as st

from service.connector.throttle import CLOCK_EPOCH_S, DatabaseClock

trips = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=0.05),  # before the statement ran
        st.floats(min_value=0.0, max_value=0.05),  # after it, until the answer was read
    ),
    min_size=1,
    max_size=30,
)


@given(offset=st.floats(min_value=-5.0, max_value=5.0), trips=trips)
def test_the_offset_is_within_half_the_quickest_round_trip(
    offset: float, trips: list[tuple[float, float]]
) -> None:
    """However late each answer was read, the estimate is off by at most half the quickest
    round trip: a busy process's slow round trips cannot pull it away."""
    clock = DatabaseClock()
    now = 1_000.0
    for before, after in trips:
        ran = now + before
        clock.observe(now, ran + after, ran + offset)
        now += 0.1
    quickest = min(before + after for before, after in trips)
    assert abs(clock.offset - offset) <= quickest / 2 + 1e-9


def test_a_stepped_clock_is_read_afresh() -> None:
    """Bounds that cannot both hold (one of the clocks was stepped): the old readings are
    dropped, not averaged with the new."""
    clock = DatabaseClock()
    clock.observe(100.0, 100.001, 100.0005 + 2.0)
    clock.observe(101.0, 101.001, 101.0005 - 3.0)
    assert abs(clock.offset + 3.0) <= 0.0005


def test_readings_older_than_two_periods_are_forgotten() -> None:
    """Clocks drift apart: a quick round trip of long ago no longer decides the offset."""
    clock = DatabaseClock()
    clock.observe(0.0, 0.0002, 0.0001 + 1.0)  # quick, offset 1.0
    later = 2.5 * CLOCK_EPOCH_S
    clock.observe(later, later + 0.01, later + 0.005 + 1.004)  # slower, offset 1.004
    clock.observe(later + 1, later + 1.01, later + 1.005 + 1.004)
    assert abs(clock.offset - 1.004) <= 0.0001


def test_round_trips_that_took_no_time_are_not_a_stepped_clock() -> None:
    """Two round trips of no time at all give the same offset, give or take a rounding of
    the subtractions: that is agreement, not a stepped clock (which would start again from
    the next, slower round trip and lose the exact reading)."""
    offset = 0.8083525681309425
    trips = [(0, 0), (0.00914403778033373, 0), (0, 0), (0, 0.008179680066450234)]
    trips.append((0.009197374451640306, 0))
    clock = DatabaseClock()
    now = 1_000.0
    for before, after in trips:
        ran = now + before
        clock.observe(now, ran + after, ran + offset)
        now += 0.1
    assert abs(clock.offset - offset) <= 1e-9
