"""The service's logger: levels asked first, every line still redacted."""

import pytest
import structlog

from service.logging import LevelFirstLogger, configure_logging

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
