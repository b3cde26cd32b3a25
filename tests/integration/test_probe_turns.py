"""Health probes over several processes on one database: the deployment as a whole asks a
partner once per interval, counted where it costs, at the partner (the sandbox's traffic).

Each `HealthMonitor` here is one process's (its own memory and process id); the partners
are a sandbox of their own, served over HTTP, so that no other test's probes are counted.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import ConnectorConfig
from connectors.registry import ConnectorRegistry, load_connectors
from sandbox import create_sandbox_app
from schemas.connector import BreakerState, CallOutcome, Pause
from service.config import Settings
from service.connector.metrics import Metrics
from service.connector.monitor import HealthMonitor, Ticket
from service.connector.repository import ConnectorRepository
from service.connector.wiring import build_configs
from service.db import WriteGate, create_engine, create_session_factory
from tests.conftest import CLIENT_TLS, serving

INTERVAL_S = 60.0
PARTNER = "vehicles"


@pytest.fixture
async def own_engine(own_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A database of each test's own: no other process has probed anything there."""
    engine = create_engine(own_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def factory(own_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(own_engine)


@pytest.fixture
async def partners(tmp_path: Path) -> AsyncIterator[str]:
    """The partner agencies, alone in a server of their own; their base URL."""
    async with serving(create_sandbox_app(tmp_path / "partners.db")) as base_url:
        yield base_url


@pytest.fixture
def registry() -> ConnectorRegistry:
    return load_connectors()


@pytest.fixture
def configs(registry: ConnectorRegistry, partners: str) -> dict[str, ConnectorConfig]:
    return build_configs(registry, Settings(partner_base_url=partners, sandbox="off"))


def process(
    factory: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    registry: ConnectorRegistry,
    settings: Settings,
    clock: Callable[[], float] = time.time,
) -> HealthMonitor:
    """One process's monitor."""
    return HealthMonitor(
        registry.names(), settings, factory, WriteGate(engine), Metrics(), clock=clock
    )


def fail_until_open(monitor: HealthMonitor, settings: Settings) -> None:
    """Calls to the partner that fail, one after another, until its breaker opens here."""
    for _ in range(settings.breaker_consecutive):
        grant = monitor.admit(PARTNER)
        assert isinstance(grant, Ticket)
        monitor.record(grant, CallOutcome.unavailable, latency_ms=20, detail="HTTP 503")


async def calls_at(partners: str, name: str = PARTNER) -> int:
    """Requests the partner `name` received (no verification runs here: all are checks)."""
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        seen: dict[str, dict[str, int]] = (await client.get(f"{partners}/traffic")).json()
    return seen[name]["calls"]


async def test_two_processes_probe_each_partner_once_per_interval(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    registry: ConnectorRegistry,
    configs: dict[str, ConnectorConfig],
    partners: str,
) -> None:
    """Two processes' rounds at the same moment probe each partner once between them; a
    round within the interval of the last probe (made by either) asks nobody; one an
    interval later asks each partner once again."""
    settings = Settings(health_probe_interval_s=INTERVAL_S, health_sync_s=0.05)
    now = [time.time()]
    api, worker = (
        process(factory, own_engine, registry, settings, lambda: now[0]) for _ in range(2)
    )
    await api.sync()
    await worker.sync()

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:

        async def both_rounds() -> tuple[set[str], set[str]]:
            here, there = await asyncio.gather(
                api.probe_round(registry, configs, client),
                worker.probe_round(registry, configs, client),
            )
            await api.sync()
            await worker.sync()
            return set(here), set(there)

        here, there = await both_rounds()
        assert here.isdisjoint(there)
        assert here | there == set(registry.names())
        assert await calls_at(partners) == 1

        now[0] += INTERVAL_S / 2
        assert await both_rounds() == (set(), set())
        assert await calls_at(partners) == 1

        now[0] += INTERVAL_S / 2 + 0.001  # past the interval, whatever the float rounding
        here, there = await both_rounds()
        assert here.isdisjoint(there)
        assert here | there == set(registry.names())
        assert await calls_at(partners) == 2

    # The result is shared: both processes see the last probe, whichever made it.
    async with factory() as session:
        row = await ConnectorRepository.from_session(session).state(PARTNER)
    assert row is not None
    assert row.last_probe_ok is True
    assert row.last_probe_started_at == datetime.fromtimestamp(now[0], UTC)


async def test_background_loops_of_two_processes_probe_once_per_interval_between_them(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    registry: ConnectorRegistry,
    configs: dict[str, ConnectorConfig],
    partners: str,
) -> None:
    """Each process's loop looks every `health_sync_s` whether a probe is due: between
    them a partner is asked about once per `health_probe_interval_s`, not once per
    process per interval."""
    interval = 0.5
    settings = Settings(health_probe_interval_s=interval, health_sync_s=0.05)
    started = time.monotonic()
    monitors = [process(factory, own_engine, registry, settings) for _ in range(2)]
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        try:
            for monitor in monitors:
                await monitor.start(registry, configs, client)
            await asyncio.sleep(2.6)
        finally:
            for monitor in monitors:
                await monitor.close()
            elapsed = time.monotonic() - started
    calls = await calls_at(partners)
    # One process on its own would make about elapsed / interval + 1; two making theirs
    # each would make twice that.
    assert 2 <= calls <= elapsed / interval + 1, (calls, elapsed)


async def test_an_open_breaker_seen_by_two_processes_is_tried_once(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    registry: ConnectorRegistry,
    configs: dict[str, ConnectorConfig],
    partners: str,
) -> None:
    """The breaker's trial call when its open period is over is one probe, whichever
    process makes it; the other adopts the closed breaker."""
    settings = Settings(
        health_probe_interval_s=3600, health_sync_s=0.05, breaker_open_s=0.3, breaker_open_max_s=1
    )
    api, worker = (process(factory, own_engine, registry, settings) for _ in range(2))
    await api.sync()
    fail_until_open(api, settings)
    await api.sync()
    await worker.sync()
    breakers = [api.breakers[PARTNER], worker.breakers[PARTNER]]
    assert [b.state for b in breakers] == [BreakerState.open] * 2

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        try:
            for monitor in (api, worker):
                # No scheduled round for an hour: only the breaker's trial is due.
                await monitor.start(registry, configs, client, first_probes_here=False)
            for _ in range(400):
                if all(b.state is BreakerState.closed for b in breakers):
                    break
                await asyncio.sleep(0.025)
            await asyncio.sleep(0.3)  # an open period more: no second trial comes
        finally:
            for monitor in (api, worker):
                await monitor.close()
    assert [b.state for b in breakers] == [BreakerState.closed] * 2
    assert await calls_at(partners) == 1


async def test_a_partner_paused_by_another_process_is_not_probed_before_its_pause_is_read(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    registry: ConnectorRegistry,
    configs: dict[str, ConnectorConfig],
    partners: str,
) -> None:
    """The turn is not taken while the stored state says paused, even by a process that
    has not synced since the pause: its partner gets no request."""
    settings = Settings(health_probe_interval_s=INTERVAL_S, health_sync_s=0.05)
    prober = process(factory, own_engine, registry, settings)
    await prober.sync()
    at = datetime.now(UTC)
    async with factory() as session:
        pause = Pause(paused_by="ops", reason="maintenance window", paused_at=at)
        assert await ConnectorRepository.from_session(session).set_pause(PARTNER, pause, at)
        await session.commit()
    assert not prober.paused(PARTNER)  # not read yet

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        probed = await prober.probe_round(registry, configs, client)
        assert PARTNER not in probed
        assert set(probed) == set(registry.names()) - {PARTNER}
        assert await calls_at(partners) == 0

        async with factory() as session:
            assert await ConnectorRepository.from_session(session).set_pause(PARTNER, None, at)
            await session.commit()
        await prober.sync()
        assert PARTNER in await prober.probe_round(registry, configs, client)
    assert await calls_at(partners) == 1


async def test_a_breaker_change_whose_sync_failed_to_commit_is_shared_at_the_next(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    registry: ConnectorRegistry,
) -> None:
    """The breaker opened here; the sync that wrote it failed at its commit (the database
    away for a moment): the next sync writes it again, rather than taking the database's
    older state for newer news and closing the breaker it had just opened."""
    settings = Settings(health_probe_interval_s=3600, health_sync_s=3600)
    api = process(factory, own_engine, registry, settings)
    await api.sync()
    fail_until_open(api, settings)
    assert api.breakers[PARTNER].state is BreakerState.open

    class CommitFails(Exception):
        pass

    healthy = api.session_factory

    def failing() -> AsyncSession:
        session = healthy()

        async def commit() -> None:
            raise CommitFails

        session.commit = commit  # type: ignore[method-assign]
        return session

    api.session_factory = failing  # type: ignore[assignment]
    with pytest.raises(CommitFails):
        await api.sync()
    api.session_factory = healthy
    await api.sync()

    assert api.breakers[PARTNER].state is BreakerState.open
    async with factory() as session:
        rows = await ConnectorRepository.from_session(session).ensure([PARTNER], datetime.now(UTC))
    row = rows[PARTNER]
    assert row.breaker == BreakerState.open.value
    assert row.breaker_version == api.breakers[PARTNER].version
