"""Load shedding and per-key rate limits over real HTTP: a saturated process answers 503
with `Retry-After` and stores nothing; a crowd arriving at once never gets more runs
started than the bound; in queue mode a full queue answers 503 too; a key past its quota
gets 429 with the IETF RateLimit fields, while another key is unaffected."""

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from service.models import AuditEvent
from tests.conftest import CLIENT_TLS, LiveService, running_service, service_settings
from tests.factories import make_id_number, member, verification_body

QUOTA = 2
BOUND = 3
CROWD = 40


async def _tokens(database_url: str, count: int) -> list[str]:
    engine = create_engine(database_url)
    tokens = []
    async with create_session_factory(engine)() as session:
        for _ in range(count):
            _, token = await create_api_key(session, role=Role.caseworker, region="00")
            tokens.append(token)
        await session.commit()
    await engine.dispose()
    return tokens


def _client(live: LiveService, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )


async def _stored(client: httpx.AsyncClient) -> int:
    response = await client.get("/v1/verifications", params={"limit": 100})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def _body(sequence: int) -> dict[str, object]:
    person = make_id_number("530103", birth="19700101", sequence=sequence)
    return verification_body([member(person)], region_code="530103")


async def _metric(live: LiveService, series: str) -> float:
    async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as plain:
        text = (await plain.get("/metrics")).text
    return float(next(row for row in text.splitlines() if row.startswith(series + " ")).split()[-1])


async def _load_refusals_audited(live: LiveService) -> int:
    engine = create_engine(live.settings.database_url)
    async with create_session_factory(engine)() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.outcome.in_(["429", "503"]))
        )
    await engine.dispose()
    return count or 0


async def _shed_count(live: LiveService, reason: str) -> float:
    return await _metric(live, f'hedui_verification_requests_shed_total{{reason="{reason}"}}')


@pytest.fixture(scope="module")
async def saturating(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[LiveService, str]]:
    settings = service_settings(
        fresh_database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        max_in_flight_runs=1,
        connector_timeout_s=30,
        verification_deadline_s=30,
    )
    (token,) = await _tokens(fresh_database_url, 1)
    async with running_service(settings) as live:
        yield live, token
        async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as plain:
            await plain.delete("/sandbox/faults/bank")


@pytest.fixture(scope="module")
async def crowded(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[LiveService, str]]:
    settings = service_settings(
        fresh_database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        max_in_flight_runs=BOUND,
        connector_timeout_s=30,
        verification_deadline_s=30,
    )
    (token,) = await _tokens(fresh_database_url, 1)
    async with running_service(settings) as live:
        yield live, token
        async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as plain:
            await plain.delete("/sandbox/faults/bank")


@pytest.fixture(scope="module")
async def queued(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[LiveService, str]]:
    """Queue mode with no worker: what is stored waits."""
    settings = service_settings(
        fresh_database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        run_mode="queue",
        max_queue_depth=BOUND,
    )
    (token,) = await _tokens(fresh_database_url, 1)
    async with running_service(settings) as live:
        yield live, token


@pytest.fixture(scope="module")
async def limited(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[LiveService, list[str]]]:
    settings = service_settings(
        fresh_database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        rate_limit_per_minute=QUOTA,
    )
    tokens = await _tokens(fresh_database_url, 2)
    async with running_service(settings) as live:
        yield live, tokens


async def test_a_saturated_process_sheds_with_503_and_stores_nothing(
    saturating: tuple[LiveService, str],
) -> None:
    live, token = saturating
    async with _client(live, token) as client:
        assert (await client.put("/sandbox/faults/bank", json={"mode": "hang"})).status_code == 200
        first = await client.post("/v1/verifications", json=_body(1))
        assert first.status_code == 202, first.text
        # Held by the hanging partner.
        assert await _metric(live, "hedui_verification_runs_in_flight") == 1
        stored = await _stored(client)
        shed_before = await _shed_count(live, "saturated")

        second = await client.post("/v1/verifications", json=_body(2))

        assert second.status_code == 503, second.text
        assert second.headers["content-type"] == "application/problem+json"
        assert second.json()["type"] == "/problems/overloaded"
        assert int(second.headers["Retry-After"]) >= 1
        assert await _stored(client) == stored
        assert await _shed_count(live, "saturated") == shed_before + 1
        # Refused at the door, before the caller is even looked up: it says only "busy".
        async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as anonymous:
            unknown = await anonymous.post("/v1/verifications", json=_body(3))
        assert unknown.status_code == 503
        assert await _shed_count(live, "saturated") == shed_before + 2
        # Reading still works while saturated; no rate limit is set, so no RateLimit fields.
        assert (await client.get(first.headers["Location"])).status_code == 200
        assert "RateLimit" not in first.headers


async def test_a_key_past_its_quota_gets_429_with_ratelimit_fields(
    limited: tuple[LiveService, list[str]],
) -> None:
    live, (token, other_token) = limited
    policy = f'"default";q={QUOTA};w=60'
    async with _client(live, token) as client, _client(live, other_token) as other:
        for sequence in range(QUOTA):
            accepted = await client.post("/v1/verifications", json=_body(10 + sequence))
            assert accepted.status_code == 202, accepted.text
            assert accepted.headers["RateLimit-Policy"] == policy
            remaining, reset = accepted.headers["RateLimit"].removeprefix('"default";').split(";")
            assert remaining == f"r={QUOTA - sequence - 1}"
            assert 1 <= int(reset.removeprefix("t=")) <= 60
        stored = await _stored(client)
        limited_before = await _shed_count(live, "rate_limited")

        refused = await client.post("/v1/verifications", json=_body(20))

        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/rate-limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Policy"] == policy
        assert refused.headers["RateLimit"].startswith('"default";r=0;t=')
        assert await _stored(client) == stored
        assert await _shed_count(live, "rate_limited") == limited_before + 1
        # Refused at the door, before the key is looked up or the body read: even a
        # malformed body is a 429 (past the door it would be a 422).
        unread = await client.post(
            "/v1/verifications", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert unread.status_code == 429, unread.text
        assert unread.headers["RateLimit"].startswith('"default";r=0;t=')
        assert 1 <= int(unread.headers["Retry-After"]) <= 60
        assert await _shed_count(live, "rate_limited") == limited_before + 2
        # Counted, not written: a flood of 429s costs the database nothing.
        assert await _load_refusals_audited(live) == 0
        # Another key has its own quota.
        own = await other.post("/v1/verifications", json=_body(21))
        assert own.status_code == 202, own.text
        assert own.headers["RateLimit"].startswith(f'"default";r={QUOTA - 1};')


async def test_a_crowd_never_starts_more_runs_than_the_bound(
    crowded: tuple[LiveService, str],
) -> None:
    """40 requests at once against a bound of 3 runs, every run held by a hanging partner:
    at most 3 are stored and run, every other one is 503, and nothing else is held."""
    live, token = crowded
    async with _client(live, token) as client:
        assert (await client.put("/sandbox/faults/bank", json={"mode": "hang"})).status_code == 200
        stored = await _stored(client)
        shed_before = await _shed_count(live, "saturated")

        answers = await asyncio.gather(
            *(client.post("/v1/verifications", json=_body(100 + n)) for n in range(CROWD))
        )

        statuses = [answer.status_code for answer in answers]
        accepted = statuses.count(202)
        assert set(statuses) <= {202, 503}, statuses
        assert 1 <= accepted <= BOUND
        assert await _stored(client) == stored + accepted
        assert await _metric(live, "hedui_verification_runs_in_flight") == accepted
        assert await _shed_count(live, "saturated") == shed_before + CROWD - accepted
        assert all(
            int(answer.headers["Retry-After"]) >= 1
            for answer in answers
            if answer.status_code == 503
        )
        # A second crowd while the first runs hang: nothing more gets in.
        again = await asyncio.gather(
            *(client.post("/v1/verifications", json=_body(200 + n)) for n in range(CROWD))
        )
        assert {answer.status_code for answer in again} == {503}
        assert await _metric(live, "hedui_verification_runs_in_flight") == accepted


async def test_a_full_queue_sheds_with_503_in_queue_mode(
    queued: tuple[LiveService, str],
) -> None:
    live, token = queued
    async with _client(live, token) as client:
        for sequence in range(BOUND):
            accepted = await client.post("/v1/verifications", json=_body(300 + sequence))
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["status"] == "queued"

        async def depth_reached() -> bool:
            # /metrics reads the depth (at most once a second) and shows it.
            return await _metric(live, "hedui_verification_queue_depth") >= BOUND

        for _ in range(100):
            if await depth_reached():
                break
            await asyncio.sleep(0.05)
        assert await _metric(live, "hedui_verification_queue_depth") == BOUND
        stored = await _stored(client)
        shed_before = await _shed_count(live, "queue_full")

        refused = await asyncio.gather(
            *(client.post("/v1/verifications", json=_body(400 + n)) for n in range(10))
        )

        assert {answer.status_code for answer in refused} == {503}
        problem = refused[0].json()
        assert problem["type"] == "/problems/overloaded"
        assert re.search("waiting to run", problem["detail"])
        assert int(refused[0].headers["Retry-After"]) >= 1
        assert await _stored(client) == stored
        assert await _shed_count(live, "queue_full") == shed_before + 10
