"""The overall verification deadline over real HTTP: a partner that never answers is cut
off by the run's deadline (not by its own, much longer, budget) and settled as `timeout`;
the report is finished and says `review`."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.config import Settings
from service.db import create_engine, create_session_factory
from tests.conftest import CLIENT_TLS, LiveService, _free_port, running_service
from tests.factories import make_id_number, member, verification_body

DEADLINE_S = 3.0  # room for the others to answer on a busy machine: only the bank must reach it
SOURCE_TIMEOUT_S = 60.0  # far beyond the deadline: only the deadline can end a hung call


@pytest.fixture(scope="module")
async def service(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[LiveService, str]]:
    settings = Settings(
        database_url=fresh_database_url,
        port=_free_port(),
        sandbox="on",
        sandbox_data=Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        connector_timeout_s=SOURCE_TIMEOUT_S,
        verification_deadline_s=DEADLINE_S,
    )
    engine = create_engine(fresh_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.caseworker, region="00")
        await session.commit()
    await engine.dispose()
    async with running_service(settings) as live:
        yield live, token
        async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as plain:
            await plain.delete("/sandbox/faults/bank")


async def test_a_hung_partner_is_settled_as_timeout_at_the_run_deadline(
    service: tuple[LiveService, str],
) -> None:
    live, token = service
    async with httpx.AsyncClient(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        verify=CLIENT_TLS,
    ) as client:
        person = make_id_number("530103", birth="19660606", sequence=1)
        assert (await client.post("/sandbox/people", json={"id_number": person})).status_code == 200
        fault = await client.put("/sandbox/faults/bank", json={"mode": "hang"})
        assert fault.status_code == 200
        body = verification_body([member(person)], region_code="530103")
        started = time.monotonic()
        response = await client.post("/v1/verifications", json=body, headers={"Prefer": "wait=30"})
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    verification = response.json()
    assert verification["status"] == "completed"
    assert verification["recommendation"] == "review"
    sources = {s["source"]: s for s in verification["sources"]}
    assert sources["bank"]["status"] == "timeout"
    assert "overall deadline" in sources["bank"]["detail"]
    assert all(s["status"] != "timeout" for name, s in sources.items() if name != "bank")
    # Generous bound: the source's own 60 s budget never came into play.
    assert elapsed < SOURCE_TIMEOUT_S / 4
