"""Dates and moments on the wire: ISO 8601, within the years a case can concern."""

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.audit import AuditQuery
from schemas.dates import IsoDate, IsoDateTime

DATES = TypeAdapter(IsoDate)


@pytest.mark.parametrize("value", ["1900-01-01", "2026-12-05", "2199-12-31"])
def test_dates_a_case_can_concern_are_taken(value: str) -> None:
    assert DATES.validate_python(value).isoformat() == value


@pytest.mark.parametrize("value", ["0001-01-01", "1899-12-31", "2200-01-01", "9999-12-31", 0])
def test_dates_far_beyond_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        DATES.validate_python(value)


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2300-01-01T00:00:00Z"]
)
def test_an_audit_filter_beyond_them_is_refused_naming_the_field(moment: str) -> None:
    with pytest.raises(ValidationError) as refused:
        AuditQuery.model_validate({"since": moment})

    assert refused.value.errors()[0]["loc"] == ("since",)


def test_an_audit_filter_within_them_is_taken() -> None:
    assert AuditQuery.model_validate({"until": "2026-12-05T08:00:00+08:00"}).until is not None


@pytest.mark.parametrize("value", ["20261120", "1732060800", "2026-1-20", "2026-11-20T00:00:00"])
def test_a_date_not_written_yyyy_mm_dd_is_refused_saying_so(value: str) -> None:
    """pydantic reads a string of digits as seconds since 1970, and answered "Datetimes
    provided to dates should have zero time" about "20261120"."""
    with pytest.raises(ValidationError, match="must be an ISO 8601 date"):
        DATES.validate_python(value)


@pytest.mark.parametrize("value", [1733443200, -1, "1733443200", "-1", "2026-11-20", True])
def test_a_moment_as_seconds_since_1970_or_without_its_time_is_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="ISO 8601 moment with its offset"):
        TypeAdapter(IsoDateTime).validate_python(value)


def test_a_moment_with_its_offset_is_taken() -> None:
    moment = TypeAdapter(IsoDateTime).validate_python("2026-11-20T09:00:00+08:00")
    assert moment.isoformat() == "2026-11-20T09:00:00+08:00"
