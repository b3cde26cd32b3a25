"""The start-up check of every connector: concurrent, bounded, and loud about failures."""

import asyncio
import logging
from typing import Any, ClassVar

import httpx
import pytest

from connectors.base import CheckResult, ConnectorConfig
from connectors.registry import ConnectorRegistry
from schemas.evidence import Evidence, HouseholdQuery
from service.logging import configure_logging
from service.partners import check_connectors


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
        return CheckResult(ok=True)

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        return Evidence(answered=household.id_numbers)


def warnings_about(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    return {
        record.msg["connector"]: record.msg["detail"]
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == "connector_unreachable"
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

    async with httpx.AsyncClient() as client:
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
