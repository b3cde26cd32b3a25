"""The start-up check of every connector: concurrent, bounded, and loud about failures."""

import asyncio
import logging
from typing import Any, ClassVar

import httpx
import pytest

from connectors.base import CheckResult, ConnectorConfig
from connectors.registry import ConnectorRegistry
from schemas.evidence import Evidence, HouseholdQuery
from service.connector.throttle import Limits, LocalThrottle
from service.connector.wiring import NOT_CHECKED, check_connectors
from service.logging import configure_logging
from tests.conftest import CLIENT_TLS


class Probe:
    """A connector whose `check` does what it is told."""

    title: ClassVar[str] = "probe"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(self, name: str, behaviour: str) -> None:
        self.name = name  # type: ignore[misc]
        self.behaviour = behaviour

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "crash":
            raise RuntimeError("a bug in the plugin")
        if self.behaviour == "down":
            return CheckResult(ok=False, detail="HTTP 503")
        if self.behaviour == "asks":
            try:
                await client.get(f"{config.base_url}/health")
            except Exception as error:  # as a connector would make an error of it
                return CheckResult(ok=False, detail=str(error))
        return CheckResult(ok=True)

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        return Evidence(answered=household.id_numbers)


def warnings_about(
    caplog: pytest.LogCaptureFixture, event: str = "connector_unreachable"
) -> dict[str, Any]:
    return {
        record.msg["connector"]: record.msg["detail"]
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == event
        and record.levelno == logging.WARNING
    }


async def test_each_connector_that_is_not_ok_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging("INFO")
    registry = ConnectorRegistry()
    for name in ("fine", "down", "hangs", "crashes"):
        behaviour = {"hangs": "hang", "crashes": "crash"}.get(name, name)
        registry.add(Probe(name, behaviour), origin="plugin")
    configs = {name: ConnectorConfig(base_url="http://partner.test") for name in registry.names()}

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        results = await check_connectors(registry, configs, client, timeout_s=0.05)

    assert {name: result.ok for name, result in results.items()} == {
        "fine": True,
        "down": False,
        "hangs": False,
        "crashes": False,
    }
    assert warnings_about(caplog) == {
        "down": "HTTP 503",
        "hangs": "no answer within 0.05 s",
        "crashes": "check failed (RuntimeError)",
    }


async def test_a_check_that_gets_no_turn_says_it_did_not_ask_the_partner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The partner's one slot is held by another call for the whole check: the check never
    reaches the partner, and the warning says so rather than calling it unreachable."""
    configure_logging("INFO")
    registry = ConnectorRegistry()
    registry.add(Probe("busy", "asks"), origin="plugin")
    configs = {"busy": ConnectorConfig(base_url="http://partner.test", max_concurrency=1)}
    throttle = LocalThrottle()
    loop = asyncio.get_running_loop()
    held = await throttle.acquire("busy", Limits(concurrency=1), loop.time() + 10)

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        results = await check_connectors(
            registry, configs, client, timeout_s=0.05, throttle=throttle
        )
    await throttle.release(held)

    assert results["busy"].ok is False
    assert results["busy"].detail == NOT_CHECKED
    assert "Starved" not in NOT_CHECKED
    assert warnings_about(caplog) == {}
    assert warnings_about(caplog, "connector_not_checked") == {"busy": NOT_CHECKED}


async def test_a_paused_connector_is_not_checked(caplog: pytest.LogCaptureFixture) -> None:
    """An operator's pause stops every call to the partner, the start-up check's too."""
    configure_logging("INFO")
    registry = ConnectorRegistry()
    registry.add(Probe("fine", "fine"), origin="plugin")
    registry.add(Probe("paused", "asks"), origin="plugin")
    configs = {name: ConnectorConfig(base_url="http://partner.test") for name in registry.names()}
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        results = await check_connectors(
            registry, configs, client, timeout_s=1, paused=lambda name: name == "paused"
        )

    assert {name: result.ok for name, result in results.items()} == {"fine": True}
    assert asked == []
    assert warnings_about(caplog) == {}
