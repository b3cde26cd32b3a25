"""What a server's start-up check says when another process has just asked every partner."""

import json
from typing import Any

import httpx
import pytest

from connectors.base import CheckResult
from connectors.registry import load_connectors
from service.config import Settings
from service.connector.wiring import check_connectors_once_listening
from service.logging import configure_logging


async def _check(
    outcome: dict[str, CheckResult], capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    registry = load_connectors()

    async def probe_round() -> dict[str, CheckResult]:
        return outcome

    configure_logging("INFO", "json")
    try:
        async with httpx.AsyncClient() as client:
            await check_connectors_once_listening(
                Settings(sandbox="off"), registry, {}, client, probe_round=probe_round
            )
        return [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging("INFO")


async def test_partners_another_process_asked_are_not_counted_as_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logged = await _check({}, capsys)
    assert [entry["event"] for entry in logged] == ["connectors_checked_elsewhere"]
    assert logged[0]["connectors"] == len(load_connectors().names())


async def test_partners_this_process_asked_are_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logged = await _check({"vehicles": CheckResult(ok=True), "bank": CheckResult(ok=True)}, capsys)
    assert [(entry["event"], entry.get("ok"), entry.get("total")) for entry in logged] == [
        ("connectors_checked", 2, 2)
    ]
