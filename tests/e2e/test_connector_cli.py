"""`hedui connector pause|resume|status` against a running service's database: the
servers follow, the events and the audit trail say who (cli:<user>)."""

import asyncio
import getpass
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.config import Settings
from service.db import create_engine, create_session_factory
from service.models import AuditEvent
from tests.conftest import CLIENT_TLS, LiveService, _free_port, running_service
from tests.e2e.test_cli import hedui


@dataclass
class Served:
    service: LiveService
    database_url: str
    operator: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.service.base_url,
            headers={"Authorization": f"Bearer {self.operator}"},
            timeout=30,
            verify=CLIENT_TLS,
        )


@pytest.fixture(scope="module")
async def served(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    # A database of its own: a pause here holds for every process using it.
    settings = Settings(
        database_url=fresh_database_url,
        port=_free_port(),
        sandbox="on",
        sandbox_data=Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        health_sync_s=0.05,
        health_probe_interval_s=0,
    )
    engine = create_engine(fresh_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.operator, region="00")
        await session.commit()
    await engine.dispose()
    async with running_service(settings) as service:
        yield Served(service, fresh_database_url, token)


async def _listed(served: Served, name: str) -> dict[str, Any]:
    async with served.client() as client:
        listed = (await client.get("/v1/connectors")).json()
    found: dict[str, Any] = next(item for item in listed if item["name"] == name)
    return found


async def _eventually(check: Any) -> Any:
    for _ in range(200):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_pause_status_resume_from_the_command_line(served: Served) -> None:
    env = {"HEDUI_DATABASE_URL": served.database_url, "COLUMNS": "200"}
    actor = f"cli:{getpass.getuser()}"

    paused = await hedui("connector", "pause", "vehicles", "--reason", "agency asked", env=env)
    assert paused.returncode == 0, paused.stderr
    assert "paused vehicles" in paused.stdout
    assert paused.stderr == ""  # what it did, said once: no log line besides

    async def server_sees_the_pause() -> dict[str, Any] | None:
        pause: dict[str, Any] | None = (await _listed(served, "vehicles"))["paused"]
        return pause

    pause = await _eventually(server_sees_the_pause)
    assert (pause["paused_by"], pause["reason"]) == (actor, "agency asked")

    again = await hedui("connector", "pause", "vehicles", "--reason", "twice", env=env)
    assert again.returncode == 1
    assert f"vehicles is already paused (by {actor}: agency asked)" in again.stderr

    table = await hedui("connector", "status", env=env)
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.lstrip().startswith("vehicles"))
    assert "paused" in row
    assert actor in row
    assert "agency asked" in row
    bank = next(line for line in table.stdout.splitlines() if line.lstrip().startswith("bank"))
    assert bank.split()[1] == "yes"
    assert bank.split()[-1] == "no"  # not paused
    as_json = await hedui("connector", "status", "--json", env=env)
    listed = {line["name"]: line for line in map(json.loads, as_json.stdout.splitlines())}
    assert listed["vehicles"]["paused"]["paused_by"] == actor
    assert listed["bank"]["paused"] is None
    assert {"enabled", "health", "breaker"} <= set(listed["bank"])
    # The table says why each status is what it is, and how to see one in detail: the
    # health model for a person (its --json is the API's health of the connector).
    assert "Why" in table.stdout
    assert "hedui connector status bank" in table.stdout
    one = await hedui("connector", "status", "vehicles", env=env)
    assert one.returncode == 0, one.stderr
    first, *rest = one.stdout.splitlines()
    assert first.startswith("vehicles: ")
    labels = {line.split()[0] for line in rest if line.strip()}
    assert {"window", "latency", "breaker", "check", "last", "paused"} <= labels
    assert "agency asked" in one.stdout
    health = json.loads((await hedui("connector", "status", "vehicles", "--json", env=env)).stdout)
    assert (health["name"], health["paused"]["reason"]) == ("vehicles", "agency asked")
    assert health["reason"] in first

    resumed = await hedui("connector", "resume", "vehicles", "--reason", "done", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == ""
    not_paused = await hedui("connector", "resume", "vehicles", env=env)
    assert not_paused.returncode == 1
    assert "vehicles is not paused" in not_paused.stderr

    async def server_sees_the_resumption() -> bool:
        return (await _listed(served, "vehicles"))["paused"] is None

    await _eventually(server_sees_the_resumption)
    async with served.client() as client:
        events = (await client.get("/v1/connectors/vehicles/events")).json()["items"]
    assert [(e["action"], e["actor"], e["reason"]) for e in events[:2]] == [
        ("resume", actor, "done"),
        ("pause", actor, "agency asked"),
    ]
    engine = create_engine(served.database_url)
    try:
        async with create_session_factory(engine)() as session:
            audited = (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.object_id == "vehicles")
                    .order_by(AuditEvent.at)
                )
            ).all()
    finally:
        await engine.dispose()
    # The refused attempts changed nothing and are not in the trail.
    assert [(event.action, event.actor_name) for event in audited] == [
        ("connector.pause", actor),
        ("connector.resume", actor),
    ]


async def test_an_unknown_connector_or_no_reason_is_one_line(served: Served) -> None:
    env = {"HEDUI_DATABASE_URL": served.database_url}
    unknown = await hedui("connector", "pause", "nope", "--reason", "x", env=env)
    assert unknown.returncode == 1
    assert "nope: No connector is registered under this name" in unknown.stderr
    assert "(in force: bank, housing_fund, pensions, public_payroll" in unknown.stderr
    no_such = await hedui("connector", "status", "nope", env=env)
    assert no_such.returncode == 1
    assert "nope: No connector is registered under this name" in no_such.stderr
    assert "Traceback" not in unknown.stderr
    blank = await hedui("connector", "pause", "bank", "--reason", "  ", env=env)
    assert blank.returncode == 2
    assert "--reason" in blank.stderr


async def test_a_reason_is_refused_as_the_api_refuses_it(served: Served) -> None:
    """An ID number in a pause or resume reason would be shown, in full, by the events API,
    the dashboard and `connector status`: the command refuses it as the API does, without
    quoting it, and nothing is paused."""
    env = {"HEDUI_DATABASE_URL": served.database_url}
    person = "11010519491231002X"
    for command in ("pause", "resume"):
        refused = await hedui(
            "connector", command, "vehicles", "--reason", f"complaint about {person}", env=env
        )
        assert refused.returncode == 2, refused.stderr
        assert "must not contain an ID number" in refused.stderr
        assert person not in refused.stderr + refused.stdout
    status = await hedui("connector", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    listed = {line["name"]: line for line in map(json.loads, status.stdout.splitlines())}
    assert listed["vehicles"]["paused"] is None
