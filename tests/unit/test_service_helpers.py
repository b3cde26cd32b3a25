"""Small pure pieces of the service layer."""

import base64
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import service.near_relative.service  # noqa: F401 - registers its error types
from connectors.base import MalformedResponse, PartnerReportedError
from schemas.connector import CallOutcome
from service.audit.service import _decode_cursor as _decode_audit_cursor
from service.cli import started_meanwhile
from service.connector.meter import PartnerPaused
from service.connector.throttle import Starved
from service.error_handlers import _SLUG_BY_STATUS, problem_response
from service.errors import PROBLEM_TYPES, HeduiError, InvalidRequest
from service.logging import configure_logging
from service.pagination import decode_cursor, encode_cursor, listing
from service.recheck.drive import Tally
from service.report.endpoints import preferred_language
from service.verification.endpoints import wait_seconds
from service.verification.fanout import THROTTLE_DETAIL, _classify


def _all_error_types(base: type[HeduiError]) -> list[type[HeduiError]]:
    found = []
    for subclass in base.__subclasses__():
        found += [subclass, *_all_error_types(subclass)]
    return found


def test_every_problem_type_is_described() -> None:
    slugs = {error.slug for error in [HeduiError, *_all_error_types(HeduiError)]}
    assert slugs <= set(PROBLEM_TYPES)
    # And those of the statuses the framework raises (405, 413, ...).
    assert set(_SLUG_BY_STATUS.values()) <= set(PROBLEM_TYPES)


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
        ("WAIT = 7", 60, 7),
        ('wait="8"', 60, 8),
        ("wait=3;foo=bar", 60, 3),
        # Not whole seconds: a wait not understood is ignored, not read in part.
        ("wait=1e3", 60, 0),
        ("wait=1.5", 60, 0),
        ("wait=-5", 60, 0),
        ("wait=٣", 60, 0),
        ("wait=", 60, 0),
        # A parameter of another preference is not a wait.
        ("foo;wait=5", 60, 0),
        ("respond-async;wait=5, handling=lenient", 60, 0),
        ("await=5", 60, 0),
    ],
)
def test_prefer_wait(prefer: str | None, cap: float, seconds: float) -> None:
    assert wait_seconds(prefer, cap) == seconds


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)
    ),
    st.uuids().map(str),
)
def test_cursor_round_trips(created_at: datetime, item_id: str) -> None:
    listed = listing("verifications", {"status": "completed"})
    assert decode_cursor(encode_cursor(created_at, item_id, listed), listed) == (
        created_at,
        item_id,
    )


def test_a_cursor_pages_only_the_list_and_filters_it_was_issued_for() -> None:
    at = datetime(2026, 12, 7, tzinfo=UTC)
    issued = encode_cursor(at, "a", listing("verifications", {"status": "completed"}))
    # The cursor and page size are not filters: another page size pages on.
    same = listing("verifications", {"status": "completed", "limit": 5, "cursor": issued})
    assert decode_cursor(issued, same) == (at, "a")
    # The same moment written with another offset is the same filter.
    moment = datetime(2026, 12, 5, tzinfo=timezone(timedelta(hours=8)))
    assert listing("verifications", {"created_from": moment}) == listing(
        "verifications", {"created_from": moment.astimezone(UTC)}
    )
    for other in (
        listing("batches", {"status": "completed"}),
        listing("verifications", {"status": "failed"}),
        listing("verifications"),
    ):
        with pytest.raises(InvalidRequest) as raised:
            decode_cursor(issued, other)
        assert raised.value.errors is not None
        assert raised.value.errors[0].loc == ["query", "cursor"]
        assert "another list" in raised.value.errors[0].msg


@pytest.mark.parametrize("cursor", ["!!", "bm90IGpzb24", "WzFd", "e30"])
def test_foreign_cursor_is_a_422(cursor: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decode_cursor(cursor, listing("verifications"))
    assert raised.value.errors is not None
    assert raised.value.errors[0].loc == ["query", "cursor"]


@pytest.mark.parametrize(
    "timestamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-01-01T00:00:00"]
)
def test_a_cursor_with_a_timestamp_of_no_database_is_a_422(timestamp: str) -> None:
    listed = listing("verifications")
    raw = json.dumps([timestamp, "f325e0e6-15e6-40e7-ad64-5f2e8e950282", listed]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    with pytest.raises(InvalidRequest):
        decode_cursor(cursor, listed)


def test_a_cursor_names_its_position_in_utc() -> None:
    shanghai = datetime(2026, 12, 5, 8, 0, tzinfo=timezone(timedelta(hours=8)))

    listed = listing("verifications")
    decoded, _ = decode_cursor(encode_cursor(shanghai, "a", listed), listed)

    assert decoded == shanghai
    assert decoded.utcoffset() == timedelta(0)


@pytest.mark.parametrize("event_id", ["2147483648", "99999999999", "-1", "1e3"])
def test_an_audit_cursor_beyond_an_event_id_is_a_422(event_id: str) -> None:
    listed = listing("audit", {"action": None})
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidRequest):
        _decode_audit_cursor(encode_cursor(at, event_id, listed), listed, "query")
    with pytest.raises(InvalidRequest):
        _decode_audit_cursor(event_id, listed, "query")  # not even a cursor
    last = encode_cursor(at, "2147483647", listed)
    assert _decode_audit_cursor(last, listed, "query") == 2147483647


def test_a_problem_echoing_a_lone_surrogate_is_still_sent() -> None:
    """Such text cannot be encoded as UTF-8: the answer failed and the connection dropped."""
    refused = InvalidRequest.at(["body", "overrides", "car\ud800"], "unknown: \udfff")

    response = problem_response(refused.problem("/v1/policy/simulate"))

    body = json.loads(response.body)
    assert body["errors"][0]["loc"] == ["body", "overrides", "car\ufffd"]
    assert body["detail"] == "body.overrides.car\ufffd: unknown: \ufffd"


def test_a_report_that_will_come_says_when_to_look_again_and_one_that_never_will_does_not() -> None:
    from service.errors import ReportNotReady

    running = ReportNotReady("running")
    assert running.headers == {"Retry-After": "1"}
    failed = ReportNotReady("failed")
    assert not failed.headers
    assert failed.detail == "The verification is failed; it has no report"


def test_a_member_name_not_in_ascii_is_masked_in_the_location_of_an_unknown_field() -> None:
    """`{"张三丰": 1}` as an unknown member: the caller's text, perhaps a person's name."""
    from pydantic import BaseModel, ConfigDict, ValidationError

    from schemas.problem import field_errors

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")
        a: int = 0

    with pytest.raises(ValidationError) as refused:
        Strict.model_validate({"张三丰李四": 1, "typo": 2})
    locations = [problem.loc for problem in field_errors(refused.value.errors())]
    assert locations == [["张****"], ["typo"]]


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (PartnerReportedError("partner reported an error (errors/2)"), "partner error: "),
        (MalformedResponse("expected <Result> as the root element"), "malformed response: "),
    ],
)
def test_a_partner_s_own_error_code_is_not_called_a_malformed_answer(
    error: Exception, detail: str
) -> None:
    """Both settle the source as an error; a business error code the partner answered with,
    in its format, is said to be the partner's error, not a garbled answer."""
    outcome, said = _classify("tax", error)
    assert outcome is CallOutcome.malformed
    assert said == detail + str(error)


@pytest.mark.parametrize(
    ("error", "outcome", "detail"),
    [
        (Starved("rate"), CallOutcome.timeout, THROTTLE_DETAIL),
        (PartnerPaused("paused by operator"), CallOutcome.paused, "paused by operator"),
    ],
)
def test_hedui_s_own_limits_are_not_a_connector_crash(
    error: Exception, outcome: CallOutcome, detail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A turn that never came, or a pause met mid-fetch, passed up through a connector's
    code: recorded as what it is, with no `connector_crashed` error and traceback."""
    configure_logging("INFO", "json")
    try:
        assert _classify("bank", error) == (outcome, detail)
    finally:
        configure_logging("INFO")
    assert "connector_crashed" not in capsys.readouterr().err


def test_re_checks_gone_before_they_were_read_were_started_elsewhere() -> None:
    """Twenty due when counted; another `hedui recheck` started all of them first: the
    one that lost the race says so, not "0 re-checked, 0 already started elsewhere"."""
    assert started_meanwhile(Tally(), 20) == 20
    some = Tally(outcomes=Counter({"queued": 5, "already_scheduled": 3, "failed": 1}))
    assert started_meanwhile(some, 20) == 11
    assert started_meanwhile(some, 9) == 0
    # A run's own failures and withdrawals are among those it queued: not counted twice.
    ran = Tally(outcomes=Counter({"queued": 4, "failed_run": 1, "withdrawn_run": 1}))
    assert started_meanwhile(ran, 4) == 0
