"""API key lifecycle on both databases: a key revoked anywhere is refused within the
principal cache's time over real HTTP, an expired key is refused at its expiry, admins list
and revoke keys in their region (audited, never seeing a token), a key's last use is written
at most once a minute, and the cache spares the database a read per request, refusals
included."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.auth.cache import PrincipalCache
from service.auth.principal import Role
from service.auth.service import create_api_key, hash_token, revoke_api_key
from service.db import create_engine, create_session_factory, migrate
from service.models import ApiKey, AuditEvent
from tests.conftest import (
    CLIENT_TLS,
    LiveService,
    _fresh_database,
    running_service,
    service_settings,
)

TTL_S = 0.3


@pytest.fixture(scope="module")
async def keys_db(fresh_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(fresh_database_url)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
async def short_cache(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveService]:
    """A service that trusts what it read of a key for 0.3 s only."""
    settings = service_settings(
        fresh_database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        principal_cache_s=TTL_S,
    )
    async with running_service(settings) as live:
        yield live


async def _key(
    sessions: async_sessionmaker[AsyncSession],
    role: str = "caseworker",
    region: str = "53",
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    async with sessions() as session:
        key, token = await create_api_key(
            session, role=Role(role), region=region, name=name, expires_at=expires_at
        )
        await session.commit()
    return key.id, token


def _client(live: LiveService, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )


async def test_a_key_revoked_elsewhere_is_refused_within_the_cache_time(
    short_cache: LiveService, keys_db: async_sessionmaker[AsyncSession]
) -> None:
    key_id, token = await _key(keys_db)
    async with _client(short_cache, token) as client:
        assert (await client.get("/v1/verifications")).status_code == 200
        # As `hedui apikey revoke` does, from another process.
        async with keys_db() as session:
            await revoke_api_key(session, key_id, reason="left the office")
            await session.commit()
        revoked_at = time.monotonic()
        while True:
            response = await client.get("/v1/verifications")
            waited = time.monotonic() - revoked_at
            if response.status_code != 200 or waited > TTL_S + 2:
                break
            await asyncio.sleep(0.05)

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "This API key has been revoked"
    assert waited <= TTL_S + 1.0  # the cache's time, and the slowness of a busy machine


async def test_an_expired_key_is_refused_and_says_so(
    short_cache: LiveService, keys_db: async_sessionmaker[AsyncSession]
) -> None:
    expired_at = datetime.now(UTC) - timedelta(seconds=1)
    async with keys_db() as session:
        _, token = await create_api_key(
            session,
            role=Role.caseworker,
            region="53",
            expires_at=expired_at,
            now=expired_at - timedelta(days=1),
        )
        await session.commit()
    async with _client(short_cache, token) as client:
        response = await client.get("/v1/verifications")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"].startswith("This API key expired at ")
    async with httpx.AsyncClient(base_url=short_cache.base_url, verify=CLIENT_TLS) as anonymous:
        unknown = await anonymous.get(
            "/v1/verifications", headers={"Authorization": "Bearer hd_nobody"}
        )
    assert unknown.json()["detail"] == "The bearer token is unknown"


async def test_admins_list_and_revoke_keys_of_their_region(
    short_cache: LiveService, keys_db: async_sessionmaker[AsyncSession]
) -> None:
    _, admin_token = await _key(keys_db, "admin", "53", name="省厅管理员 Yunnan admin")
    held_id, held_token = await _key(keys_db, "caseworker", "5301", name="Zhang caseworker, Wuhua")
    other_id, _ = await _key(keys_db, "caseworker", "44", name="Guangdong caseworker")
    async with (
        _client(short_cache, admin_token) as admin,
        _client(short_cache, held_token) as held,
    ):
        listed = await admin.get("/v1/apikeys", params={"limit": 200})
        assert listed.status_code == 200, listed.text
        items = {item["id"]: item for item in listed.json()["items"]}
        assert held_id in items
        assert other_id not in items
        assert all(item["region"].startswith("53") for item in items.values())
        assert items[held_id]["name"] == "Zhang caseworker, Wuhua"
        assert items[held_id]["status"] == "active"
        assert items[held_id]["expires_at"] is not None
        assert "hd_" not in listed.text
        assert hash_token(held_token) not in listed.text
        named = await admin.get("/v1/apikeys", params={"name": "zhang", "role": "caseworker"})
        assert [item["id"] for item in named.json()["items"]] == [held_id]
        prefecture = await admin.get("/v1/apikeys", params={"region": "5301", "limit": 200})
        assert held_id in {item["id"] for item in prefecture.json()["items"]}
        assert all(item["region"].startswith("5301") for item in prefecture.json()["items"])
        outside = await admin.get("/v1/apikeys", params={"region": "44"})
        assert outside.json()["items"] == []  # another province's: never widened to it
        assert (await admin.get("/v1/apikeys", params={"region": "5"})).status_code == 422
        assert (await held.get("/v1/apikeys")).status_code == 403
        # 00, every region, as such a key is shown: narrows nothing, widens nothing.
        every = await admin.get("/v1/apikeys", params={"region": "00", "limit": 200})
        assert {item["id"] for item in every.json()["items"]} == set(items)

        revoked = await admin.post(
            f"/v1/apikeys/{held_id}/revoke", json={"reason": "moved to another county"}
        )

        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        assert revoked.json()["revoked_reason"] == "moved to another county"
        # This process forgot the key at once; others within the cache's time.
        refused = await held.get("/v1/verifications")
        assert refused.status_code == 401
        assert refused.json()["detail"] == "This API key has been revoked"
        again = await admin.post(f"/v1/apikeys/{held_id}/revoke")
        assert again.status_code == 409
        assert again.json()["type"] == "/problems/api-key-revoked"
        assert (await admin.post(f"/v1/apikeys/{other_id}/revoke")).status_code == 404
        extra = await admin.post(f"/v1/apikeys/{held_id}/revoke", json={"token": "x"})
        assert extra.status_code == 422
        only_revoked = await admin.get("/v1/apikeys", params={"status": "revoked"})
        assert held_id in {item["id"] for item in only_revoked.json()["items"]}

    async with keys_db() as session:
        events = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.object_id == held_id, AuditEvent.action == "apikey.revoke"
                )
            )
        ).all()
    assert {"ok", "409"} <= {event.outcome for event in events}
    assert {event.actor_name for event in events} == {"省厅管理员 Yunnan admin"}


async def test_last_use_is_written_once_not_per_request(
    short_cache: LiveService, keys_db: async_sessionmaker[AsyncSession]
) -> None:
    key_id, token = await _key(keys_db)

    async def last_used() -> datetime | None:
        async with keys_db() as session:
            key = await session.get(ApiKey, key_id)
            assert key is not None
            return key.last_used_at

    assert await last_used() is None
    async with _client(short_cache, token) as client:
        for _ in range(3):
            assert (await client.get("/v1/verifications")).status_code == 200
        for _ in range(40):  # noted in the background: at most 1 s
            first = await last_used()
            if first is not None:
                break
            await asyncio.sleep(0.025)
        assert first is not None
        for _ in range(3):
            assert (await client.get("/v1/verifications")).status_code == 200
    await asyncio.sleep(0.05)
    assert await last_used() == first


# The cache itself, against each real database, on a clock the test moves.


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime.now(UTC)

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def key_writes(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every UPDATE of api_keys the engine sends, while the test runs."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_the_cache_reads_a_key_once_per_ttl_and_refuses_at_expiry(
    session_factory: async_sessionmaker[AsyncSession], key_writes: list[str]
) -> None:
    clock = Clock()
    expires = clock.wall + timedelta(seconds=7)
    _, token = await _key(session_factory, expires_at=expires)
    cache = PrincipalCache(
        session_factory, ttl_s=5, clock=clock.monotonic, now=clock.now, max_entries=4
    )

    for _ in range(50):
        assert (await cache.lookup(token)).principal is not None
    for _ in range(50):  # a flood of one bad token: one read too
        assert (await cache.lookup("hd_bad")).refusal == "The bearer token is unknown"
    assert cache.reads == 2
    await cache.aclose()
    assert len(key_writes) == 1  # the last use, once

    clock.advance(5)
    found = await asyncio.gather(*(cache.lookup(token) for _ in range(20)))
    assert all(item.principal is not None for item in found)
    assert cache.reads == 3  # stale: read again, once for all 20
    clock.advance(2.5)  # past the expiry, within the TTL of the last read
    expired = await cache.lookup(token)
    assert expired.principal is None
    assert expired.refusal is not None
    assert "expired" in expired.refusal
    assert cache.reads == 3  # still cached: the expiry is checked on each request

    for number in range(10):
        await cache.lookup(f"hd_random_{number}")
    assert len(cache._entries) <= 4
    await cache.aclose()
    assert len(key_writes) == 1


async def test_the_cache_sees_a_revocation_after_its_ttl_or_at_once_when_told(
    session_factory: async_sessionmaker[AsyncSession], key_writes: list[str]
) -> None:
    clock = Clock()
    cache = PrincipalCache(session_factory, ttl_s=5, clock=clock.monotonic, now=clock.now)
    key_id, token = await _key(session_factory)
    other_id, other = await _key(session_factory)
    assert (await cache.lookup(token)).principal is not None
    assert (await cache.lookup(other)).principal is not None
    for revoked in (key_id, other_id):
        async with session_factory() as session:
            await revoke_api_key(session, revoked, reason=None)
            await session.commit()

    assert (await cache.lookup(token)).principal is not None  # trusted for the TTL...
    cache.forget(other_id)
    assert (await cache.lookup(other)).refusal == "This API key has been revoked"  # told
    clock.advance(5)
    assert (await cache.lookup(token)).refusal == "This API key has been revoked"  # ...no more

    # Last use: once per key and minute, whatever the number of requests.
    live_id, live = await _key(session_factory)
    await cache.aclose()
    key_writes.clear()
    for _ in range(30):
        await cache.lookup(live)
    clock.advance(59)
    await cache.lookup(live)
    await cache.aclose()
    assert len(key_writes) == 1
    clock.advance(1)
    await cache.lookup(live)
    await cache.aclose()
    assert len(key_writes) == 2
    async with session_factory() as session:
        stored = await session.get(ApiKey, live_id)
        assert stored is not None
        assert stored.last_used_at == clock.wall


async def test_upgrade_gives_legacy_keys_an_expiry_and_decisions_their_names(
    tmp_path: Path, database_url: str
) -> None:
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    url, drop = await _fresh_database(dialect, tmp_path)
    engine = create_engine(url)
    try:
        await migrate(engine, "0017")
        created = datetime(2025, 1, 1, tzinfo=UTC)
        async with engine.begin() as connection:
            await connection.run_sync(_legacy_rows, created)
        before = datetime.now(UTC)
        await migrate(engine, "head")
        async with create_session_factory(engine)() as session:
            keys = {key.id: key for key in await session.scalars(select(ApiKey))}
            decided_by = await session.scalar(
                select(_decisions().c.decided_by_name).where(_decisions().c.id == "d-1")
            )
    finally:
        await engine.dispose()
        if drop is not None:
            await drop()
    usable, blank, revoked = keys["k-usable"], keys["k-blank"], keys["k-revoked"]
    assert usable.name == "王芳 (五华区民政局)"
    assert usable.expires_at is not None
    assert before + timedelta(days=89) < usable.expires_at < before + timedelta(days=91)
    assert blank.name == "unnamed key k-blank"
    assert revoked.expires_at is None
    assert revoked.revoked_at is not None
    assert decided_by == "王芳 (五华区民政局)"


def _decisions() -> Any:
    from service.models import Decision

    return Decision.__table__


def _legacy_rows(connection: Any, created: datetime) -> None:
    from sqlalchemy import MetaData, insert

    metadata = MetaData()
    metadata.reflect(connection)
    tables = metadata.tables
    key = {"role": "approver", "region_prefix": "53", "created_at": created, "revoked_at": None}
    connection.execute(
        insert(tables["api_keys"]),
        [
            {**key, "id": "k-usable", "name": "王芳 (五华区民政局)", "token_hash": "1" * 64},
            {**key, "id": "k-blank", "name": " ", "token_hash": "2" * 64},
            {**key, "id": "k-revoked", "name": "gone", "token_hash": "3" * 64,
             "revoked_at": created},
        ],
    )  # fmt: skip
    connection.execute(
        insert(tables["verifications"]),
        {
            "id": "v-1",
            "reference": "r",
            "program": "dibao",
            "region_code": "530102",
            "area": "urban",
            "as_of": created.date(),
            "consent_document_id": "c",
            "consent_signed_on": created.date(),
            "status": "completed",
            "created_by": "k-blank",
            "created_at": created,
        },
    )
    connection.execute(
        insert(tables["decisions"]),
        {
            "id": "d-1",
            "verification_id": "v-1",
            "decision": "approve",
            "reason": "ok",
            "decided_by": "k-usable",
            "decided_at": created,
        },
    )
