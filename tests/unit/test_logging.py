"""The service's logger: levels asked first, every line still redacted, exceptions logged
by type and place, never by what their messages quote."""

import json
import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated
from urllib.parse import quote, unquote

import httpx
import pytest
import structlog
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError

from schemas.verification import SourceStatus
from service.error_handlers import install_error_handlers
from service.jobs.workflow import RunResult, _log_finished
from service.logging import LevelFirstLogger, configure_logging, redact_line
from service.verification.fanout import FetchOutcome

ID_NUMBER = "11010519491231002X"


def test_below_the_level_nothing_is_built_or_written(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    log = structlog.get_logger("hedui.test")
    assert log.info("source_settled", source="bank") is None
    assert log.debug("connector_retry", source="bank") is None
    log.warning("completion_poll_failed", error_type="OSError")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "completion_poll_failed" in lines[0]
    assert "source_settled" not in lines[0]


def test_at_the_level_lines_are_written_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "json")
    log = structlog.get_logger("hedui.test")
    log.debug("connector_retry", source="bank")
    log.info("source_settled", source="bank", detail=f"no record for {ID_NUMBER}")
    err = capsys.readouterr().err
    assert '"event": "connector_retry"' in err
    assert '"event": "source_settled"' in err
    assert ID_NUMBER not in err
    assert isinstance(structlog.get_logger("hedui.test").bind(), LevelFirstLogger)
    configure_logging("INFO")


def test_at_debug_the_wire_libraries_quote_no_partner_traffic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """httpcore's debug lines quote a partner's headers as bytes (a balance, a name): even
    at DEBUG they are not written; httpx's one line a request is."""
    configure_logging("DEBUG", "json")
    for name in ("httpcore.http11", "h11", "hpack.hpack", "aiohttp.client"):
        logging.getLogger(name).debug("receive_response_headers %r", [(b"X-Balance", b"87654.32")])
    logging.getLogger("httpx").debug("HTTP Request: POST http://partner/q")
    err = capsys.readouterr().err
    assert "87654.32" not in err
    assert "HTTP Request" in err
    configure_logging("INFO")


def test_an_id_number_in_escaped_bytes_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """A `bytes` value in a line shows full-width digits as `\\xef\\xbc\\x95...`: read as
    the text they are, they are masked like any other ID number; other bytes stay as
    they were written."""
    full_width = ID_NUMBER.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    configure_logging("INFO", "json")
    log = structlog.get_logger("hedui.test")
    log.info("raw", value=repr(full_width.encode()))
    log.info("raw", value=repr("欧阳".encode()))
    first, second = (json.loads(line)["value"] for line in capsys.readouterr().err.splitlines())
    assert first.startswith("b'")
    assert "*" * 8 in first
    assert full_width not in first
    assert full_width[6:14] not in first
    assert second == repr("欧阳".encode())
    configure_logging("INFO")


@pytest.mark.parametrize(
    "written",
    [
        "5301-0219-9001-0112-31",
        "530102 1990 0101 1231",
        "530102%2D1990%2D0101%2D1231",
        "530102-19900101-124X-1",  # a check character X, a digit after it
    ],
)
def test_an_id_number_written_apart_leaves_no_digit_of_it_in_a_line(
    written: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No run of digits to mask (a filter in a URL, say): every digit of the value is."""
    configure_logging("INFO", "json")
    log = structlog.get_logger("hedui.test")
    log.info("access", line=f"GET /v1/verifications?reference={written} HTTP/1.1")
    log.info("access", line="GET /v1/verifications?as_of=2026-12-04&limit=50 HTTP/1.1")
    first, second = (json.loads(line)["line"] for line in capsys.readouterr().err.splitlines())
    assert (
        first
        == "GET /v*/verifications?reference=" + re.sub(r"\d", "*", unquote(written)) + " HTTP/*.*"
    )
    assert "2026-12-04" in second  # dates and counts side by side are left alone
    configure_logging("INFO")


@pytest.mark.parametrize(
    "written",
    [
        "伍叁零壹零贰壹玖玖零零壹零壹壹贰叁壹",  # Chinese numerals, financial forms
        "五三〇一〇二-一九九〇〇一〇一-一二三一",  # numerals written apart
    ],
)
def test_an_id_number_written_in_numerals_leaves_nothing_of_it_in_a_line(
    written: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line's own identifiers beside it keep their digits only when it holds none."""
    configure_logging("INFO", "json")
    log = structlog.get_logger("hedui.test")
    request = "7d0e0d8a-b123-4aa7-9d0e-0d8ab1239aa0"
    log.info("note", text=f"{written} ({request})")
    log.info("note", text=f"verification {request}, 2026-12-04, 3 members")
    first, second = (json.loads(line)["text"] for line in capsys.readouterr().err.splitlines())
    assert "壹零" not in first
    assert "〇一〇二" not in first
    assert second == f"verification {request}, 2026-12-04, 3 members"
    configure_logging("INFO")


@pytest.mark.parametrize(
    "made_up",
    [
        "53010219-8005-0100-12aa-aaaaaaaaaaaa",
        "5301a0219b8005c010012aaaaaaaaaaa",
        "5301A021-9800-5010-A012-CCCCCCCCCCCC",  # upper case
        "req_5301A0219800A5010A012CCCCCCCCCCC",  # a prefix of word characters before it
        "530102_19800501_0012",  # underscores between its pieces
    ],
)
def test_an_id_number_in_the_shape_of_one_of_hedui_s_identifiers_is_masked(
    made_up: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    structlog.get_logger("hedui.test").info("access", line=f"GET /v1/verifications/{made_up}")
    line = json.loads(capsys.readouterr().err)["line"]
    assert "8005" not in line
    assert "0219" not in line
    assert "0102" not in line
    configure_logging("INFO")


@pytest.mark.parametrize(
    "ordinary",
    [
        "p99=349.005 at 2026-01-09 03:25:24,483",  # a figure, then a date and a time
        "[generated in 0.07390s] (91405, '12ae21a2-452c-4e3d-9999-33d1ca4e8614', "
        "'2026-06-06 07:08:37,970', 6354.37)",
        '234.135.185.102:24967 - "GET /v1/verifications/c466111a-c02b-4a93-9381-2ce64ba9c675'
        '/report HTTP/1.1" 200',
    ],
)
def test_ordinary_lines_with_many_digits_keep_them(ordinary: str) -> None:
    """Digits that stand apart with words between, or inside an id, whole pieces of
    which make no number: left as they are."""
    assert redact_line(ordinary) == ordinary


def test_an_access_line_withholds_a_reference_in_its_query(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A caller's reference is its own text and may name a person, which no pattern finds
    to mask: the access line (uvicorn's record, as `hedui serve` renders it) keeps the rest
    of the query and withholds that value."""
    configure_logging("INFO")
    access = logging.getLogger("uvicorn.access")
    # As `hedui serve` leaves it (a test server's own uvicorn set-up may have quietened it).
    level, disabled = access.level, access.disabled
    access.setLevel(logging.INFO)
    access.disabled = False
    name = quote("张三丰的申请")
    try:
        for path in (
            f"/v1/verifications?status=completed&reference={name}&limit=5",
            f"/v1/batches?reference={name}",
            "/v1/verifications?status=completed",
            f"/v1/verifications?re%66erence={name}&referenced=1",  # as the application reads it
            f"/v1/verifications/{name}",  # a name where an id goes
            f"/v1/warnings?code={name}&status=open%20x",
            "/v1/verifications/张三",
        ):
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200)
    finally:
        access.setLevel(level)
        access.disabled = disabled
    lines = capsys.readouterr().err.splitlines()
    assert (
        '"GET /v1/verifications?status=completed&reference=***&limit=5 HTTP/1.1" 200' in (lines[0])
    )
    assert '"GET /v1/batches?reference=*** HTTP/1.1" 200' in lines[1]
    assert '"GET /v1/verifications?status=completed HTTP/1.1" 200' in lines[2]
    assert '"GET /v1/verifications?re%66erence=***&referenced=1 HTTP/1.1" 200' in lines[3]
    # Text outside ASCII, which no id or code of hedui's has, is withheld wherever it is.
    assert '"GET /v1/verifications/*** HTTP/1.1" 200' in lines[4]
    assert '"GET /v1/warnings?code=***&status=open%20x HTTP/1.1" 200' in lines[5]
    assert '"GET /v1/verifications/*** HTTP/1.1" 200' in lines[6]
    assert name not in "".join(lines)
    assert "张" not in "".join(lines)


def test_a_made_up_request_id_is_never_cut_by_the_id_number_masking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from uuid import UUID

    from schemas.identity import redact_id_numbers
    from service import request_id

    # The first random id drawn has 18 digits in a row; the next one is taken instead.
    drawn = iter(
        [UUID("a1884b71f27d40448312345678908303"), UUID("abcdefab1234abcd5678abcdef901234")]
    )
    monkeypatch.setattr(request_id.uuid, "uuid4", lambda: next(drawn))

    made = request_id.request_id_from(None)

    assert made == UUID("abcdefab1234abcd5678abcdef901234").hex
    assert redact_id_numbers(made) == made


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("case-42.retry-1", True),
        ("5301A021-9800-5010-A012-CCCCCCCCCCCC", False),  # an ID number in pieces
        ("530102199001011231", False),
    ],
)
def test_a_caller_s_request_id_is_kept_unless_it_holds_an_id_number(sent: str, kept: bool) -> None:
    """It is logged, echoed and kept in the audit trail: one holding an ID number, whole
    or in pieces, is replaced by a fresh one."""
    from service import request_id

    assert (request_id.request_id_from(sent) == sent) is kept


AMOUNT = "199999999998765.42"
NAME = "张三丰"


class Income(BaseModel):
    monthly_amount: Annotated[Decimal, Field(max_digits=16, decimal_places=2)]


def _validation_error() -> ValidationError:
    """What building a report raised when an amount left the 16 digits an amount has."""
    with pytest.raises(ValidationError) as refused:
        Income(monthly_amount=Decimal(AMOUNT) * 10)
    assert "input_value=Decimal('1999999999987654.20')" in str(refused.value)
    return refused.value


def _leaky_bug() -> None:
    """An unexpected error whose chain carries an ID number, a name and an amount."""
    try:
        {"applicant": ID_NUMBER}[NAME]
    except KeyError as missing:
        raise ValueError(f"{ID_NUMBER} {NAME} earns {AMOUNT}") from missing


def _assert_nothing_personal(logged: str) -> None:
    for text in (ID_NUMBER, NAME, AMOUNT, AMOUNT.replace(".", ""), "1999999999987654"):
        assert text not in logged
    assert "input_value" not in logged or "input_value=<withheld>" in logged


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_an_unexpected_error_is_logged_by_type_and_place_not_its_values(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    configure_logging("INFO", fmt)
    log = structlog.get_logger("hedui.test")
    try:
        _leaky_bug()
    except ValueError:
        log.exception("unhandled_error", error_type="ValueError")
    try:
        raise _validation_error()
    except ValidationError:
        log.exception("unhandled_error", error_type="ValidationError")

    err = capsys.readouterr().err
    configure_logging("INFO")

    _assert_nothing_personal(err)
    assert err.count("unhandled_error") == 2
    # Where it happened stays: the frames, the types, the place and kind of a refused field.
    assert "_leaky_bug" in err
    assert "KeyError (message withheld)" in err
    assert "ValueError (message withheld)" in err
    assert "direct cause" in err
    assert "ValidationError: 1 error(s) for Income: monthly_amount: decimal_max_digits" in err


def test_an_error_handed_over_or_logged_by_a_library_is_withheld_alike(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`exc_info=error` after the handler ended (a failed run), and the standard library's
    loggers (uvicorn's "Exception in ASGI application"), inside a task group."""
    configure_logging("INFO", "json")
    try:
        _leaky_bug()
    except ValueError as error:
        failed = error
    group = ExceptionGroup("run", [failed, _validation_error()])
    structlog.get_logger("hedui.test").error("verification_failed", exc_info=group)
    logging.getLogger("uvicorn.error").error(
        "Exception in ASGI application", exc_info=(type(failed), failed, failed.__traceback__)
    )
    # A message that quotes a validation error's text, as an unretrieved task's does.
    logging.getLogger("asyncio").error(
        "Task exception was never retrieved: %s", str(group.exceptions[1])
    )

    err = capsys.readouterr().err
    configure_logging("INFO")

    _assert_nothing_personal(err)
    assert "ExceptionGroup (message withheld)" in err
    assert "Exception in ASGI application" in err
    assert "input_value=<withheld>" in err


async def test_the_500_handler_logs_no_value_of_the_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the app's own handler: the caller gets a bare 500, the log the place."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        _leaky_bug()

    configure_logging("INFO", "json")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hedui") as client:
        response = await client.get("/boom")
    err = capsys.readouterr().err
    configure_logging("INFO")

    assert response.status_code == 500
    _assert_nothing_personal(err + response.text)
    assert '"event": "unhandled_error"' in err
    assert "ValueError (message withheld)" in err


def test_a_run_is_one_line_at_info_naming_its_failed_sources_not_their_details(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    outcomes = (
        FetchOutcome(source="bank", status=SourceStatus.timeout, detail=f"late for {ID_NUMBER}"),
        FetchOutcome(source="pensions", status=SourceStatus.ok),
        FetchOutcome(source="vehicles", status=SourceStatus.error, detail="HTTP 500"),
        FetchOutcome(source="housing_fund", status=SourceStatus.no_record),
    )
    settled = tuple((outcome.source, outcome.status) for outcome in outcomes)
    stored_before = ("public_payroll", SourceStatus.ok)  # scored, though not this run's
    result = RunResult(
        "completed", "review", datetime.now(UTC), outcomes, (*settled, stored_before)
    )
    _log_finished("5b0c3f4e-0000-4000-8000-000000000001", result)
    [line] = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["event"] == "run_finished"
    assert event["status"] == "completed"
    assert event["sources"] == {"error": 1, "no_record": 1, "ok": 2, "timeout": 1}
    assert event["failed"] == ["bank", "vehicles"]
    assert "recommendation" not in event
    assert ID_NUMBER not in line
    assert "HTTP 500" not in line

    _log_finished(
        "5b0c3f4e-0000-4000-8000-000000000002",
        RunResult("completed", "eligible", datetime.now(UTC), (), settled[1:2]),
        "collect_finished",
    )
    finished = json.loads(capsys.readouterr().err)
    assert finished["event"] == "collect_finished"
    assert finished["sources"] == {"ok": 1}
    assert "failed" not in finished
    configure_logging("INFO")
