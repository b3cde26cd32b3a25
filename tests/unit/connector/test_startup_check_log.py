"""What a server's start-up check says when another process has just asked every partner."""

import httpx
from structlog.testing import capture_logs

from connectors.base import CheckResult
from connectors.registry import load_connectors
from service.config import Settings
from service.connector.wiring import check_connectors_once_listening


async def _check(outcome: dict[str, CheckResult]) -> list[dict[str, object]]:
    registry = load_connectors()

    async def probe_round() -> dict[str, CheckResult]:
        return outcome

    async with httpx.AsyncClient() as client:
        with capture_logs() as logged:
            await check_connectors_once_listening(
                Settings(sandbox="off"), registry, {}, client, probe_round=probe_round
            )
    return logged


async def test_partners_another_process_asked_are_not_counted_as_none() -> None:
    logged = await _check({})
    assert [entry["event"] for entry in logged] == ["connectors_checked_elsewhere"]
    assert logged[0]["connectors"] == len(load_connectors().names())


async def test_partners_this_process_asked_are_counted() -> None:
    logged = await _check({"vehicles": CheckResult(ok=True), "bank": CheckResult(ok=True)})
    assert [(entry["event"], entry.get("ok"), entry.get("total")) for entry in logged] == [
        ("connectors_checked", 2, 2)
    ]
