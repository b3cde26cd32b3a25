"""At start-up hedui checks every connector in the background and names the unreachable."""

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import pytest

from tests.conftest import running_service, service_settings


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.msg["connector"]
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == "connector_unreachable"
        and record.levelno == logging.WARNING
    ]


def checked(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        isinstance(record.msg, dict) and record.msg.get("event") == "connectors_checked"
        for record in caplog.records
    )


async def test_an_unreachable_connector_is_named_and_hedui_starts_anyway(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = service_settings(
        database_url,
        tmp_path / "sandbox.db",
        connectors={"pensions": {"base_url": f"http://127.0.0.1:{closed_port()}/pensions"}},
    )
    async with running_service(settings) as service:
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            assert (await client.get("/healthz")).status_code == 200
        for _ in range(500):  # the checks run in the background; wait for their summary
            if checked(caplog):
                break
            await asyncio.sleep(0.02)
    assert checked(caplog)
    # The sandbox agencies this very server serves were reached: only pensions is named.
    assert unreachable(caplog) == ["pensions"]
