"""Small pure pieces of the service layer."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import service.near_relative.service  # noqa: F401 - registers its error types
from service.errors import PROBLEM_TYPES, HeduiError, InvalidRequest
from service.pagination import decode_cursor, encode_cursor
from service.report.endpoints import preferred_language
from service.verification.endpoints import _wait_seconds


def _all_error_types(base: type[HeduiError]) -> list[type[HeduiError]]:
    found = []
    for subclass in base.__subclasses__():
        found += [subclass, *_all_error_types(subclass)]
    return found


def test_every_problem_type_is_described() -> None:
    slugs = {error.slug for error in [HeduiError, *_all_error_types(HeduiError)]}
    assert slugs <= set(PROBLEM_TYPES)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "zh"),
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("fr, en;q=0.5", "en"),
        ("en;q=0.3, zh;q=0.7", "zh"),
        ("de", "zh"),
        ("en;q=abc", "zh"),
    ],
)
def test_preferred_language(header: str | None, language: str) -> None:
    assert preferred_language(header) == language


@pytest.mark.parametrize(
    ("prefer", "cap", "seconds"),
    [
        (None, 60, 0),
        ("wait=10", 60, 10),
        ("respond-async, wait=5", 60, 5),
        ("wait=600", 60, 60),
        ("wait=abc", 60, 0),
        ("handling=strict", 60, 0),
    ],
)
def test_prefer_wait(prefer: str | None, cap: float, seconds: float) -> None:
    assert _wait_seconds(prefer, cap) == seconds


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)
    ),
    st.uuids().map(str),
)
def test_cursor_round_trips(created_at: datetime, item_id: str) -> None:
    assert decode_cursor(encode_cursor(created_at, item_id)) == (created_at, item_id)


@pytest.mark.parametrize("cursor", ["!!", "bm90IGpzb24", "WzFd", "e30"])
def test_foreign_cursor_is_a_422(cursor: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decode_cursor(cursor)
    assert raised.value.errors is not None
    assert raised.value.errors[0].loc == ["query", "cursor"]
