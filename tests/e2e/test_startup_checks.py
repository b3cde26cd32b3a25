"""At start-up hedui checks every connector in the background and names the unreachable."""

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from connectors.registry import load_connectors
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from service.models import ConnectorState
from tests.conftest import CLIENT_TLS, running_service, service_settings
from tests.connectors.declarative.specs import example
from tests.loopback import closed_port
from tests.unit.test_route_building import unbuilt


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
    own_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database of its own: a process sharing it (the session's live service) may have
    # probed pensions within the interval, and then this one would leave it to that one.
    settings = service_settings(
        own_database_url,
        tmp_path / "sandbox.db",
        connectors={"pensions": {"base_url": f"http://127.0.0.1:{closed_port()}/pensions"}},
    )
    async with running_service(settings) as service:
        # Listening means ready: FastAPI's routes were built during start-up, not left to
        # the first request (which waited seconds for them on a busy machine).
        assert unbuilt(service.app) == []  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=service.base_url, verify=CLIENT_TLS) as client:
            assert (await client.get("/healthz")).status_code == 200
        for _ in range(500):  # the checks run in the background; wait for their summary
            if checked(caplog):
                break
            await asyncio.sleep(0.02)
    assert checked(caplog)
    # The sandbox agencies this very server serves were reached: only pensions is named.
    assert unreachable(caplog) == ["pensions"]


async def test_an_enabled_declarative_connector_is_checked_too(
    own_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A declarative connector in force when hedui starts is checked with its spec's own
    base URL and limits, alongside the built-in ones."""
    engine = create_engine(own_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.integrator, region="00")
        await session.commit()
    await engine.dispose()
    settings = service_settings(own_database_url, tmp_path / "sandbox.db")
    async with (
        running_service(settings) as service,
        httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=CLIENT_TLS,
        ) as integrator,
    ):
        spec = example("tax", f"{service.base_url}/sandbox")
        # The next start's server listens on the same port: the spec's URL holds.
        assert (await integrator.post("/v1/connectors", json=spec)).status_code == 201
        enabled = await integrator.post("/v1/connectors/tax/enable", json={"force": True})
        assert enabled.status_code == 200, enabled.text
    caplog.clear()
    # The next start comes an interval after this one's probes: each partner's turn is free.
    engine = create_engine(own_database_url)
    async with create_session_factory(engine)() as session:
        await session.execute(update(ConnectorState).values(last_probe_started_at=None))
        await session.commit()
    await engine.dispose()

    async with running_service(settings):
        for _ in range(500):  # the checks run in the background; wait for their summary
            if checked(caplog):
                break
            await asyncio.sleep(0.02)
    summary = next(
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "connectors_checked"
    )
    assert isinstance(summary, dict)
    assert summary["total"] == len(load_connectors().names()) + 1
    assert summary["ok"] == summary["total"]
    assert unreachable(caplog) == []


async def test_at_start_up_each_partner_is_asked_once_and_the_check_counts_as_a_probe(
    own_database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The start-up check is the health monitor's first round of probes, not a second
    round beside it: each agency counts one call, and the probes' metric counts it. (A
    database of its own: no other process there has probed the partners already.)"""
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", health_sync_s=0.05)
    async with (
        running_service(settings) as service,
        httpx.AsyncClient(base_url=service.base_url, verify=CLIENT_TLS) as client,
    ):
        for _ in range(500):
            if checked(caplog):
                break
            await asyncio.sleep(0.02)
        assert checked(caplog)
        await asyncio.sleep(0.3)  # several rounds of the monitor's loop: none probes again
        traffic = (await client.get("/sandbox/traffic")).json()
        metrics = (await client.get("/metrics")).text
    built_in = load_connectors().names()
    assert {name: traffic[name]["calls"] for name in built_in} == dict.fromkeys(built_in, 1)
    for name in built_in:
        assert f'hedui_connector_probes_total{{connector="{name}",result="ok"}} 1.0' in metrics
