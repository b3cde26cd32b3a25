"""A recipient's re-check schedule keeps to the day of the month its approval set."""

import calendar
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.recipient.calendar import add_months, next_after

DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
INTERVALS = st.sampled_from([1, 3, 6, 12])


def month_end(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def test_a_schedule_approved_on_the_31st_comes_back_to_the_31st_after_february() -> None:
    anchor = date(2026, 8, 31)
    due = add_months(anchor, 6, anchor.day)
    assert due == date(2027, 2, 28)
    following = next_after(due, 6, due, anchor.day)
    assert following == date(2027, 8, 31)  # not the 28th
    # Without the anchor's day, the 28th: the drift recipients approved before it keep.
    assert next_after(due, 6, due) == date(2027, 8, 28)


def test_a_leap_day_approval_falls_on_the_29th_in_every_leap_year() -> None:
    anchor = date(2028, 2, 29)
    dates = [add_months(anchor, 12, anchor.day)]
    for _ in range(4):
        dates.append(next_after(dates[-1], 12, dates[-1], anchor.day))
    assert dates == [
        date(2029, 2, 28),
        date(2030, 2, 28),
        date(2031, 2, 28),
        date(2032, 2, 29),
        date(2033, 2, 28),
    ]


@given(DAYS, INTERVALS, st.integers(min_value=1, max_value=30))
def test_every_due_date_falls_on_the_approvals_day_or_its_months_end(
    anchor: date, months: int, periods: int
) -> None:
    due = add_months(anchor, months, anchor.day)
    for _ in range(periods):
        assert due.day == min(anchor.day, month_end(due))
        due = next_after(due, months, due, anchor.day)
    assert due.day == min(anchor.day, month_end(due))


@given(DAYS, INTERVALS, st.integers(min_value=0, max_value=2000), st.integers(1, 31))
def test_a_late_run_catches_up_with_one_date_after_today(
    due: date, months: int, late_days: int, keep_day: int
) -> None:
    today = due + timedelta(days=late_days)
    following = next_after(due, months, today, keep_day)
    assert following > today
    # The date before it on the schedule was not after today: no period was skipped.
    assert add_months(following, -months, keep_day) <= today or following == add_months(
        due, months, keep_day
    )
