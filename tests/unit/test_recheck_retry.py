"""How long a failed re-check waits before a pass starts it again."""

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.recipient.repository import RETRY_MAX, retry_delay


def test_the_wait_doubles_from_five_minutes_to_a_day() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [
        timedelta(minutes=5),
        timedelta(minutes=10),
        timedelta(minutes=20),
        timedelta(minutes=40),
    ]
    assert retry_delay(9) == timedelta(minutes=5 * 256)
    assert retry_delay(10) == timedelta(days=1)  # 5 min x 512 is past a day
    assert retry_delay(10_000) == timedelta(days=1)


@given(st.integers(min_value=1, max_value=10**6))
def test_the_wait_never_shrinks_and_never_passes_a_day(failures: int) -> None:
    assert timedelta(minutes=5) <= retry_delay(failures) <= RETRY_MAX
    assert retry_delay(failures) <= retry_delay(failures + 1)
