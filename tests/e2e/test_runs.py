"""Runs under duress, over real HTTP: duplicate requests, crowds of waiters, a database
that goes away. Partner queries are counted where they arrive (the sandbox, or a partner
served by the test itself)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from service.app import create_app
from service.config import Settings
from tests.conftest import CLIENT_TLS, ClientFactory, _free_port, serving
from tests.e2e.gates import GatePartner, gated_registry, proxied
from tests.factories import make_id_number, member, verification_body
from tests.stored import caseworker_token


async def sandbox_queries(http: httpx.AsyncClient) -> dict[str, int]:
    response = await http.get("/sandbox/queries")
    assert response.status_code == 200
    counts: dict[str, int] = response.json()
    return counts


async def test_concurrent_duplicates_ask_every_partner_once(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """100 POSTs at once with one Idempotency-Key: one verification, one query per agency."""
    caseworker = await api_client()
    body = verification_body([member(make_id_number("530103"))], region_code="530103")
    before = await sandbox_queries(http)

    responses = await asyncio.gather(
        *(
            caseworker.post(
                "/v1/verifications",
                json=body,
                headers={"Idempotency-Key": "burst-1", "Prefer": "wait=20"},
            )
            for _ in range(100)
        )
    )

    assert {r.status_code for r in responses} == {200}, {r.text for r in responses}
    assert len({r.json()["id"] for r in responses}) == 1
    assert {r.json()["status"] for r in responses} == {"completed"}
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 99
    after = await sandbox_queries(http)
    asked = {source["source"] for source in responses[0].json()["sources"]}
    assert asked
    # Agencies no connector serves (those left for declarative connectors) are never asked.
    assert {source: after[source] - before[source] for source in after} == {
        source: int(source in asked) for source in after
    }


@pytest.fixture
async def gate() -> AsyncIterator[tuple[GatePartner, str]]:
    partner = GatePartner()
    async with serving(partner.app) as url:
        yield partner, url
        partner.open()


def _settings(database_url: str, partners: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        sandbox="off",
        partner_base_url=partners,
        sandbox_data=tmp_path / "sandbox.db",
        connector_timeout_s=60,
        max_wait_s=60,
    )


async def test_waiting_replays_hold_no_database_connection(
    own_database_url: str, gate: tuple[GatePartner, str], tmp_path: Path
) -> None:
    """40 replays waiting under `Prefer: wait` leave the pool to everyone else."""
    database_url = own_database_url
    partner, partners = gate
    app = create_app(_settings(database_url, partners, tmp_path), registry=gated_registry())
    token = await caseworker_token(database_url)
    body = verification_body([member(make_id_number("530103"))], region_code="530103")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "crowd", "Prefer": "wait=60"}
    async with (
        serving(app) as url,
        httpx.AsyncClient(base_url=url, timeout=90, verify=CLIENT_TLS) as client,
    ):
        first = asyncio.create_task(client.post("/v1/verifications", json=body, headers=headers))
        await asyncio.wait_for(partner.arrived.wait(), 30)
        replays = [
            asyncio.create_task(client.post("/v1/verifications", json=body, headers=headers))
            for _ in range(40)
        ]
        await asyncio.sleep(1)  # let the replays arrive and settle into their wait

        health = await client.get("/healthz", timeout=5)
        listing = await client.get(
            "/v1/verifications", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )

        assert health.status_code == 200
        assert listing.status_code == 200
        assert not any(task.done() for task in [first, *replays])  # all still waiting
        partner.open()
        answers = await asyncio.gather(first, *replays)
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["status"] for a in answers} == {"completed"}
    assert partner.queries == 1


async def test_database_outage_is_503_and_runs_finish_once_it_is_back(
    own_database_url: str, gate: tuple[GatePartner, str], tmp_path: Path
) -> None:
    """The database goes away mid-run: the API answers 503 with Retry-After, the run keeps
    its partner's answer and stores it once the database is back."""
    database_url = own_database_url
    if not database_url.startswith("postgresql"):
        pytest.skip("cuts a PostgreSQL server's connections")
    partner, partners = gate
    url = make_url(database_url)
    token = await caseworker_token(database_url)
    async with proxied(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        app = create_app(_settings(through_proxy, partners, tmp_path), registry=gated_registry())
        auth = {"Authorization": f"Bearer {token}"}
        body = verification_body([member(make_id_number("530103"))], region_code="530103")
        async with (
            serving(app, _free_port()) as base,
            httpx.AsyncClient(base_url=base, headers=auth, timeout=30, verify=CLIENT_TLS) as client,
        ):
            accepted = await client.post("/v1/verifications", json=body)
            assert accepted.status_code == 202, accepted.text
            verification_id = accepted.json()["id"]
            await asyncio.wait_for(partner.arrived.wait(), 30)

            before = await client.get("/metrics")
            await proxy.cut()
            during = await client.get(f"/v1/verifications/{verification_id}")
            submit_during = await client.post("/v1/verifications", json=body)
            metrics_during = await client.get("/metrics")
            partner.open()  # the answer arrives while the database is away
            await asyncio.sleep(1)  # its first writes fail and back off
            await proxy.restore()

            status = None
            for _ in range(300):
                response = await client.get(f"/v1/verifications/{verification_id}")
                status = response.json().get("status")
                if response.status_code == 200 and status == "completed":
                    break
                await asyncio.sleep(0.1)
            metrics_after = await client.get("/metrics")

    for problem in (during, submit_during):
        assert problem.status_code == 503, problem.text
        assert problem.headers["content-type"].startswith("application/problem+json")
        assert int(problem.headers["Retry-After"]) > 0
    assert status == "completed"
    assert partner.queries == 1
    # Operators still see this process's figures while the database is away, and the outage.
    assert "hedui_database_up 1.0" in before.text
    assert metrics_during.status_code == 200, metrics_during.text
    assert "hedui_database_up 0.0" in metrics_during.text
    assert 'hedui_connector_status{connector="gated",' in metrics_during.text  # last values
    assert "hedui_database_up 1.0" in metrics_after.text
