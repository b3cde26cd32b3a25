"""Dates on the wire: ISO 8601 strings only, within the years a case can concern."""

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)
"""The dates a caller may send: a household's facts, its consent and the filters over them
all fall here. Far beyond, a date is a mistake (year 9999, year 1), and one that cannot
even be stored or compared in every time zone."""


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_only(value: object) -> object:
    # pydantic would read a number as seconds since 1970, and a string of digits too
    # ("20261120" is a moment in 1970 to it): a caller who sends one means a date.
    if isinstance(value, int | float) or (
        isinstance(value, str) and not _ISO_DATE.fullmatch(value)
    ):
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD)")
    return value


def _within_years(value: date) -> date:
    day = value.astimezone(UTC).date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


def _utc_within_years(value: datetime) -> datetime:
    try:
        return _within_years(value)  # type: ignore[return-value]  # a datetime in, the same out
    except OverflowError:  # 9999-12-31T23:59-14:00 is in year 10000 in UTC
        raise ValueError(f"must be between {EARLIEST} and {LATEST}") from None


IsoDate = Annotated[date, BeforeValidator(_iso_only), AfterValidator(_within_years)]
_ISO_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ].*", re.DOTALL)


def _iso_moment_only(value: object) -> object:
    # As for dates: pydantic reads a number, or a string of digits, as seconds since 1970.
    if isinstance(value, int | float) or (
        isinstance(value, str) and not _ISO_MOMENT.fullmatch(value)
    ):
        raise ValueError("must be an ISO 8601 moment with its offset (2026-11-20T09:00:00+08:00)")
    if isinstance(value, str) and _SPACED_OFFSET.fullmatch(value):
        # 2026-11-20T09:00:00+08:00 pasted into a URL's query: its + arrives as a space.
        raise ValueError(
            "has a space where its offset's sign should be: a + in a URL's query string "
            "arrives as a space, so write it %2B (2026-11-20T09:00:00%2B08:00), or give the "
            "moment in UTC (2026-11-20T01:00:00Z)"
        )
    return value


_SPACED_OFFSET = re.compile(
    r".*[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? [0-9]{2}(:?[0-9]{2})?"
)


IsoDateTime = Annotated[
    AwareDatetime, BeforeValidator(_iso_moment_only), AfterValidator(_utc_within_years)
]
"""A moment with its offset, between `EARLIEST` and `LATEST` in UTC."""
