"""Calendar arithmetic for schedules (pure)."""

import calendar
from datetime import date


def add_months(day: date, months: int, keep_day: int | None = None) -> date:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb).
    With `keep_day`, that day of the month instead of `day`'s (a schedule anchored on the
    31st whose last date was clamped to 28 Feb goes on to 31 Aug, not 28 Aug)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(keep_day or day.day, calendar.monthrange(year, month)[1]))


def authorization_expired(expires_on: date | None, today: date) -> bool:
    """Has an authorization that runs until `expires_on` (None: as long as the benefit)
    ended by `today`? It is good on its last day; a withdrawal ends it the day before."""
    return expires_on is not None and expires_on < today


def next_after(due_on: date, months: int, today: date, keep_day: int | None = None) -> date:
    """The first date of the schedule `due_on, due_on + months, ...` that is after `today`:
    a re-check run late catches up with one re-check, not one per missed period. Each date
    falls on `keep_day` (the approval's day of the month), clamped to its month's end."""
    step = 1
    following = add_months(due_on, months, keep_day)
    while following <= today:
        step += 1
        following = add_months(due_on, months * step, keep_day)
    return following
