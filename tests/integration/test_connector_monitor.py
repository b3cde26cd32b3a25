"""The health monitor on a real database: state shared between processes, probes against
the sandbox over HTTP, and a connector's own bug kept to its source."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import CheckResult, Connector, ConnectorConfig
from connectors.declarative import build_connector, validate_spec
from connectors.http import Retry, request
from connectors.registry import ConnectorRegistry, load_connectors
from connectors.testing import retry_testing
from schemas.connector import BreakerState, CallOutcome, ConnectorHealth, Pause
from schemas.evidence import Evidence, HouseholdQuery, MemberQuery, RequestContext
from schemas.verification import SourceStatus
from service.config import Settings
from service.connector.meter import Attempt
from service.connector.metrics import Metrics
from service.connector.monitor import (
    EARLY_PROBE_GAP_S,
    TOTALS_KEPT,
    HealthMonitor,
    Refusal,
    Ticket,
)
from service.connector.repository import ConnectorRepository
from service.connector.service import connector as connector_service
from service.connector.wiring import build_configs, check_connectors
from service.db import WriteGate, create_engine, create_session_factory
from service.logging import configure_logging
from service.verification.fanout import SourceFetcher
from tests.conftest import CLIENT_TLS, LiveService
from tests.connectors.declarative.specs import example
from tests.connectors.support import PluginDouble
from tests.factories import make_id_number

SETTINGS = Settings(health_sync_s=0.05, breaker_open_s=30.0)


@pytest.fixture(scope="module")
async def own_engine(fresh_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fresh_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def factory(own_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(own_engine)


def monitor(
    factory: async_sessionmaker[AsyncSession], engine: AsyncEngine, names: list[str]
) -> HealthMonitor:
    """One process's monitor (each has its own memory and process id)."""
    return HealthMonitor(names, SETTINGS, factory, WriteGate(engine), Metrics())


def succeed(process: HealthMonitor, name: str, times: int) -> None:
    for _ in range(times):
        process.record(process.admit(name), CallOutcome.ok, latency_ms=40)


def fail(process: HealthMonitor, name: str, times: int) -> None:
    for _ in range(times):
        grant = process.admit(name)
        assert isinstance(grant, Ticket)
        process.record(grant, CallOutcome.unavailable, latency_ms=20, detail="HTTP 503")


def test_a_breaker_that_opens_is_a_warning_and_one_that_closes_is_not(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage shows in a log kept at WARNING; the partner's return is news at INFO."""
    configure_logging("INFO")
    health = monitor(factory, own_engine, ["flaky"])
    fail(health, "flaky", 5)
    breaker = health.breakers["flaky"]
    assert breaker.state is BreakerState.open
    breaker.open_until = 0.0  # its open period is over: the next call is a trial
    grant = health.admit("flaky")
    assert isinstance(grant, Ticket)
    health.record(grant, CallOutcome.ok, latency_ms=20)
    assert breaker.state is BreakerState.closed

    changes = [
        (record.msg["state"], record.levelno)
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "breaker_changed"
    ]
    assert changes == [
        ("open", logging.WARNING),
        ("half_open", logging.WARNING),
        ("closed", logging.INFO),
    ]


class Busy(PluginDouble):
    """A plugin whose partner is busy once (503, `Retry-After: 1`), then answers at once."""

    name: ClassVar[str] = "busy"

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        await request(client, config, "GET", "/records", lambda body: body)
        return Evidence(answered=household.id_numbers)


async def test_a_retry_s_wait_is_not_the_partner_s_latency(
    factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
) -> None:
    """The partner said to come back in a second and then answered at once: the source
    took over a second, the partner's latency is its two quick answers (a partner that
    failed is seen in its failures, not in the backoff hedui chose)."""
    answers = [httpx.Response(503, headers={"Retry-After": "1"}), httpx.Response(200)]
    partner = httpx.MockTransport(lambda request: answers.pop(0))
    registry = ConnectorRegistry()
    registry.add(Busy(), origin="plugin")
    health = monitor(factory, own_engine, ["busy"])
    config = ConnectorConfig(base_url="http://partner.test", timeout_s=5)
    household = HouseholdQuery(
        region_code="530103",
        as_of=date(2026, 11, 20),
        members=(MemberQuery(id_number=make_id_number(birth="19660607", sequence=2)),),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )
    with retry_testing(False):
        async with httpx.AsyncClient(transport=partner) as client:
            outcome = await SourceFetcher(registry, {"busy": config}, client, health).fetch(
                "busy", household
            )

    assert (outcome.status, outcome.attempts) == (SourceStatus.no_record, 2)
    assert outcome.duration_ms is not None
    assert outcome.duration_ms >= 1000
    (bucket,) = [b for (name, _), b in health._buckets.items() if name == "busy"]
    assert bucket.calls == 1
    assert bucket.latency_ms_sum < 500, bucket


class TestSharedState:
    async def test_a_breaker_opened_by_one_process_is_open_in_the_others(
        self, factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
    ) -> None:
        api, worker = (monitor(factory, own_engine, ["shared_a"]) for _ in range(2))
        await api.sync()
        await worker.sync()

        fail(worker, "shared_a", 5)
        assert worker.breakers["shared_a"].state is BreakerState.open
        assert isinstance(api.admit("shared_a"), Ticket)  # not synced yet
        await worker.sync()
        await api.sync()

        refusal = api.admit("shared_a")
        assert isinstance(refusal, Refusal)
        assert refusal.detail == "circuit open"

    async def test_counts_of_every_process_add_up(
        self, factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
    ) -> None:
        one, two = (monitor(factory, own_engine, ["shared_b"]) for _ in range(2))
        fail(one, "shared_b", 2)
        fail(two, "shared_b", 3)
        await one.sync()
        await two.sync()
        registry = ConnectorRegistry()
        registry.add(Quiet("shared_b"))
        async with factory() as session:
            health = await connector_service.health(session, registry, one, SETTINGS, "shared_b")
        assert (health.calls, health.failures) == (5, 5)
        assert health.last_error is not None
        assert health.last_error.detail == "HTTP 503"

    async def test_this_process_s_calls_count_before_they_are_stored(
        self, factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
    ) -> None:
        """An operator who looks right after a failure sees it, not the last sync's view;
        and once stored it is counted once, not twice."""
        one, two = (monitor(factory, own_engine, ["shared_d"]) for _ in range(2))
        fail(two, "shared_d", 2)
        await two.sync()
        fail(one, "shared_d", 1)  # not stored yet
        registry = ConnectorRegistry()
        registry.add(Quiet("shared_d"))

        async def counted(process: HealthMonitor) -> tuple[int, int]:
            async with factory() as session:
                health = await connector_service.health(
                    session, registry, process, SETTINGS, "shared_d"
                )
            return health.calls, health.failures

        assert await counted(one) == (3, 3)
        assert await counted(two) == (2, 2)  # another process's unstored calls: not yet
        await one.sync()
        assert await counted(one) == (3, 3)
        assert await counted(two) == (3, 3)

    async def test_a_sync_costs_the_same_statements_for_six_connectors_as_for_one(
        self, factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
    ) -> None:
        """Every process writes its counts and signals every `health_sync_s`: the rows of
        all its connectors in one statement each (not a read and a write per connector),
        and what they hold adds up over syncs."""
        names = [f"many_{index}" for index in range(6)]
        statements: list[str] = []

        def note(_conn: Connection, _cursor: object, statement: str, *_: object) -> None:
            statements.append(statement)

        counts = []
        for connectors in (names[:1], names):
            process = monitor(factory, own_engine, connectors)
            await process.sync()  # the rows of its connectors exist from here on
            event.listen(own_engine.sync_engine, "before_cursor_execute", note)
            try:
                for times in (2, 3):
                    for name in connectors:
                        process.record(process.admit(name), CallOutcome.ok, latency_ms=40)
                        fail(process, name, times)
                    statements.clear()
                    await process.sync()
                    counts.append(len(statements))
            finally:
                event.remove(own_engine.sync_engine, "before_cursor_execute", note)
            async with factory() as session:
                rows = await ConnectorRepository.from_session(session).buckets(
                    None, datetime.now(UTC) - timedelta(hours=1)
                )
            mine = [row for row in rows if row.process == process.process]
            assert sorted(row.connector for row in mine) == sorted(connectors)
            assert {(row.calls, row.failures, sum(row.latency)) for row in mine} == {(7, 5, 7)}
        assert counts[0] == counts[2], counts
        assert counts[1] == counts[3], counts

    @pytest.mark.parametrize("bucket_s", [60, 3600])
    async def test_counts_of_a_bucket_it_no_longer_remembers_are_added_to_its_row(
        self,
        factory: async_sessionmaker[AsyncSession],
        own_engine: AsyncEngine,
        bucket_s: int,
    ) -> None:
        """A process writes a bucket's total whole while it remembers what it stored there
        (`TOTALS_KEPT`, and at least two buckets, so a wide bucket is remembered while it
        is counted in); counts for one it has forgotten (the clock stepped back that far)
        are added to its row, never written over it."""
        start = 1_800_000_000.0 - 1_800_000_000.0 % bucket_s
        now = [start + 1]
        settings = SETTINGS.model_copy(update={"health_bucket_s": bucket_s})
        process = HealthMonitor(
            ["wide"], settings, factory, WriteGate(own_engine), Metrics(), clock=lambda: now[0]
        )
        succeed(process, "wide", 2)
        await process.sync()
        now[0] += bucket_s / 2  # the same bucket, half of it later: written whole
        succeed(process, "wide", 1)
        await process.sync()
        assert ("wide", datetime.fromtimestamp(start, UTC)) in process._stored  # still
        now[0] = start + 3 * bucket_s + TOTALS_KEPT.total_seconds()  # forgotten past this
        succeed(process, "wide", 1)
        await process.sync()
        now[0] = start + 2  # the clock steps back into the first bucket
        succeed(process, "wide", 4)
        await process.sync()
        async with factory() as session:
            rows = await ConnectorRepository.from_session(session).buckets(
                "wide", datetime.fromtimestamp(start, UTC)
            )
        mine = [(row.calls, row.failures) for row in rows if row.process == process.process]
        assert mine == [(7, 0), (1, 0)]

    async def test_when_two_processes_change_a_breaker_at_once_one_wins(
        self, factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
    ) -> None:
        one, two = (monitor(factory, own_engine, ["shared_c"]) for _ in range(2))
        await one.sync()
        await two.sync()
        fail(one, "shared_c", 5)
        fail(two, "shared_c", 5)
        await one.sync()
        await two.sync()  # its write loses the compare-and-set: it adopts the winner's state
        assert one.breakers["shared_c"].version == two.breakers["shared_c"].version
        assert one.breakers["shared_c"].open_until == pytest.approx(
            two.breakers["shared_c"].open_until, abs=1e-3
        )
        assert not two.breakers["shared_c"].changed


class Quiet:
    """A connector that is always healthy (a stand-in where only its name matters)."""

    title: ClassVar[str] = "quiet"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        return CheckResult(ok=True)

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        return Evidence()


class Buggy(Quiet):
    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        return {}["oops"]  # type: ignore[no-any-return]


async def test_a_connector_bug_is_that_source_error_logged_with_its_type(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging("INFO")  # as the service does: structlog's events reach caplog
    registry = ConnectorRegistry()
    registry.add(Buggy("buggy"))
    health = monitor(factory, own_engine, ["buggy"])
    config = ConnectorConfig(base_url="http://127.0.0.1:9")
    household = HouseholdQuery(
        region_code="530103",
        as_of=date(2026, 11, 20),
        members=(MemberQuery(id_number=make_id_number(birth="19660607", sequence=1), name="张三"),),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        fetcher = SourceFetcher(registry, {"buggy": config}, client, health)
        outcome = await fetcher.fetch("buggy", household)
        unknown = await fetcher.fetch("absent", household)

    assert (outcome.status, outcome.detail) == (SourceStatus.error, "connector failed (KeyError)")
    crash = next(r.msg for r in caplog.records if "connector_crashed" in str(r.msg))
    assert isinstance(crash, dict)
    assert crash["error_type"] == "KeyError"
    assert unknown.detail == "no connector is registered under this name"
    # A bug is ours, not the partner's: it does not count against the breaker.
    assert health.breakers["buggy"].failure_rate() is None


class Misbehaving(PluginDouble):
    """A plugin whose `check` hangs or raises."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        if self.name == "hangs":
            await asyncio.sleep(3600)
        raise RuntimeError("a bug in the plugin")


async def test_a_probe_and_the_start_up_check_say_the_same_of_a_bad_check(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A check that hangs past the source's budget or raises is a failing check, in the
    same words whichever asks: the probes (and the look before a re-check run) or the
    start-up check; and a crash is logged with its type."""
    configure_logging("INFO")
    registry = ConnectorRegistry()
    for name in ("hangs", "crashes"):
        registry.add(Misbehaving(name), origin="plugin")
    configs = {
        name: ConnectorConfig(base_url="http://127.0.0.1:9", timeout_s=0.05)
        for name in registry.names()
    }
    health = monitor(factory, own_engine, registry.names())
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        probed = await health.probe_round(registry, configs, client)
        failing, asked = await health.unanswered(registry, configs, client)
        started = await check_connectors(registry, configs, client, timeout_s=0.05)

    expected = {
        "hangs": CheckResult(ok=False, detail="no answer within 0.05 s"),
        "crashes": CheckResult(ok=False, detail="check failed (RuntimeError)"),
    }
    assert probed == started == expected
    assert (failing, list(asked)) == (["crashes", "hangs"], ["crashes", "hangs"])
    assert all(config is configs[name] for name, config in asked.items())
    crashes = [r.msg for r in caplog.records if "probe_crashed" in str(r.msg)]
    assert crashes
    assert all(isinstance(c, dict) and c["error_type"] == "RuntimeError" for c in crashes)


async def test_probes_give_a_quiet_connector_a_status_and_recover_an_open_breaker(
    live_service: LiveService,
    http: httpx.AsyncClient,
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
) -> None:
    registry = load_connectors()
    settings = live_service.settings
    configs = build_configs(registry, settings)
    health = monitor(factory, own_engine, registry.names())
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        await health.probe_round(registry, configs, client)
        await health.sync()
        async with factory() as session:
            listed = await connector_service.summaries(session, registry, health, settings)
        assert {item.health.value for item in listed} == {"operational"}

        await http.put("/sandbox/faults/bank", json={"mode": "down"})
        assert not await health.probe(registry.get("bank"), configs["bank"], client)
        await health.sync()
        async with factory() as session:
            bank = await connector_service.health(session, registry, health, settings, "bank")
        assert (bank.status.value, bank.reason) == ("down", "health check failing")
        assert bank.last_probe is not None
        assert not bank.last_probe.ok

        # An open breaker whose time is up takes a passing probe as its trial call.
        fail(health, "bank", 5)
        breaker = health.breakers["bank"]
        assert breaker.state is BreakerState.open
        breaker.open_until = 0.0  # as if its open period were over
        await http.delete("/sandbox/faults/bank")
        assert await health.probe(registry.get("bank"), configs["bank"], client)
        assert breaker.state is BreakerState.closed
        await health.sync()
        async with factory() as session:
            bank = await connector_service.health(session, registry, health, settings, "bank")
        assert bank.status.value == "operational"


class TestRetries:
    async def test_each_retry_is_a_metric_and_a_debug_line_and_polls_are_neither(
        self,
        factory: async_sessionmaker[AsyncSession],
        own_engine: AsyncEngine,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        configure_logging("INFO")  # as the service does: through the standard library
        process = monitor(factory, own_engine, ["retrying"])
        grant = process.admit("retrying")
        assert isinstance(grant, Ticket)
        attempts = [
            Attempt(10, 503),
            Attempt(10, None, "ConnectTimeout", Retry(2, "http_5xx")),
            Attempt(10, 202, retry=Retry(3, "timeout")),
            Attempt(10, 200),  # a poll
        ]
        with caplog.at_level(logging.DEBUG, logger="service.connector.monitor"):
            process.record(grant, CallOutcome.ok, latency_ms=40, attempts=attempts)

        assert process.metrics.retries.labels("retrying")._value.get() == 2
        lines = [
            (record.levelname, record.msg["source"], record.msg["attempt"], record.msg["reason"])
            for record in caplog.records
            if isinstance(record.msg, dict) and record.msg.get("event") == "connector_retry"
        ]
        assert lines == [("DEBUG", "retrying", 2, "http_5xx"), ("DEBUG", "retrying", 3, "timeout")]


async def test_failing_calls_and_an_open_period_that_is_over_ask_for_a_probe_at_once(
    factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
) -> None:
    """Status follows real calls, not the probe schedule: a failing partner is probed at
    once (then at most every EARLY_PROBE_GAP_S), an open breaker as soon as it may try."""
    now = [1_000_000.0]
    registry = ConnectorRegistry()
    registry.add(Quiet("early"))
    config = ConnectorConfig(base_url="http://127.0.0.1:9")
    health = HealthMonitor(
        ["early"], SETTINGS, factory, WriteGate(own_engine), Metrics(), clock=lambda: now[0]
    )
    assert health.early_probes() == []
    fail(health, "early", 1)
    assert health.early_probes() == ["early"]
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        assert await health.probe(registry.get("early"), config, client)
        assert health.early_probes() == []  # answered by the probe
        fail(health, "early", 1)
        assert health.early_probes() == []  # the last probe was just now
        now[0] += EARLY_PROBE_GAP_S
        assert health.early_probes() == ["early"]

        # An answer that is garbage is the partner's failure too (not the breaker's).
        now[0] += EARLY_PROBE_GAP_S
        assert await health.probe(registry.get("early"), config, client)
        grant = health.admit("early")
        assert isinstance(grant, Ticket)
        health.record(grant, CallOutcome.malformed, latency_ms=20, detail="body is not JSON")
        now[0] += EARLY_PROBE_GAP_S
        assert health.early_probes() == ["early"]

        fail(health, "early", 5)  # five in a row: open
        breaker = health.breakers["early"]
        assert breaker.state is BreakerState.open
        assert breaker.open_until is not None
        now[0] = breaker.open_until - 1
        assert health.early_probes() == []  # refused calls are no news
        now[0] = breaker.open_until
        assert health.early_probes() == ["early"]
        assert await health.probe(registry.get("early"), config, client)  # the trial call
    assert breaker.state is BreakerState.closed
    assert health.early_probes() == []


async def test_once_the_breaker_closes_the_outage_no_longer_holds_the_status_down(
    factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
) -> None:
    registry = ConnectorRegistry()
    registry.add(Quiet("mended"))
    settings = SETTINGS.model_copy(update={"health_bucket_s": 1, "health_min_calls": 3})
    health = HealthMonitor(["mended"], settings, factory, WriteGate(own_engine), Metrics())
    fail(health, "mended", 5)
    await health.sync()

    async def status() -> tuple[str, str]:
        async with factory() as session:
            found = await connector_service.health(session, registry, health, settings, "mended")
        return found.status.value, found.reason

    assert await status() == ("down", "circuit open")
    health.breakers["mended"].open_until = 0.0  # its open period is over
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        config = ConnectorConfig(base_url="http://127.0.0.1:9")
        assert await health.probe(registry.get("mended"), config, client)
    await health.sync()
    # Five failures against no success in the window would be `down`; they were before
    # the breaker closed.
    assert await status() == ("operational", "health check passing")
    fail(health, "mended", 1)
    await health.sync()
    assert await status() == ("degraded", "the latest call failed")


async def test_the_health_model_says_where_its_window_starts_once_the_breaker_closed(
    factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
) -> None:
    """Before the close the figures cover `window_s`; after it they start at the close
    (`window_from`, `window_restarted`), beside the outage's errors still listed."""
    registry = ConnectorRegistry()
    registry.add(Quiet("restarted"))
    settings = SETTINGS.model_copy(update={"health_bucket_s": 1, "health_window_s": 300})
    health = HealthMonitor(["restarted"], settings, factory, WriteGate(own_engine), Metrics())
    fail(health, "restarted", 5)
    await health.sync()

    async def read() -> ConnectorHealth:
        async with factory() as session:
            return await connector_service.health(session, registry, health, settings, "restarted")

    before = datetime.now(UTC)
    outage = await read()
    assert (outage.window_restarted, outage.calls, outage.failures) == (False, 5, 5)
    assert abs((before - outage.window_from) - timedelta(seconds=300)) < timedelta(seconds=5)

    health.breakers["restarted"].open_until = 0.0  # its open period is over
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        config = ConnectorConfig(base_url="http://127.0.0.1:9")
        assert await health.probe(registry.get("restarted"), config, client)
    await health.sync()
    async with factory() as session:
        events = await ConnectorRepository.from_session(session).events("restarted")
    closed_at = next(event.at for event in events if event.action == "breaker_closed")

    mended = await read()
    assert mended.window_restarted
    assert mended.window_from == closed_at
    assert (mended.calls, mended.failures) == (0, 0)
    assert mended.recent_errors  # the outage's, still shown


class PausedMidCheck(Quiet):
    """Its check fails once, and the operator pauses it before the check's retry."""

    def __init__(self, name: str, pause: Callable[[], None]) -> None:
        super().__init__(name)
        self.pause = pause

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        first = await client.get("http://partner.test/health")
        self.pause()  # the pause lands while the probe is under way
        retried = await client.get("http://partner.test/health")
        return CheckResult(ok=first.is_success and retried.is_success, detail="HTTP 503")


async def test_a_pause_that_lands_during_a_probe_stops_its_retry_and_its_result(
    factory: async_sessionmaker[AsyncSession], own_engine: AsyncEngine
) -> None:
    """The probe sends no request after the pause, and records nothing: no probe result,
    no failure for the breaker, no probe count."""
    sent: list[str] = []

    def partner(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(503)

    health = HealthMonitor(["stopped"], SETTINGS, factory, WriteGate(own_engine), Metrics())
    now = datetime.now(UTC)
    connector = PausedMidCheck(
        "stopped",
        lambda: health.set_pause("stopped", Pause(paused_by="ops", reason="x", paused_at=now), now),
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(partner)) as client:
        passed = await health.probe(
            connector, ConnectorConfig(base_url="http://partner.test"), client
        )

    assert not passed
    assert len(sent) == 1  # the retry was never sent
    assert probes(health, "stopped", "failed") == probes(health, "stopped", "ok") == 0
    assert "stopped" not in health.early_probes()  # not a suspect: nothing was learnt
    assert health.unsynced("stopped", now - timedelta(minutes=5)) == []
    assert health._signals["stopped"].probe is None


# -- declarative connectors ------------------------------------------------------------------


def enable_tax(registry: ConnectorRegistry, live: LiveService) -> dict[tuple[str, str], Connector]:
    """Put the example `tax` spec (the live sandbox's tax agency) in force in `registry`, as
    the connector refresher does once it is enabled over the API; its versions, to disable
    it again with `registry.set_declared({}, versions)`."""
    tax = build_connector(validate_spec(example("tax", f"{live.base_url}/sandbox")), "1")
    versions: dict[tuple[str, str], Connector] = {("tax", "1"): tax}
    registry.set_declared({"tax": tax}, versions)
    return versions


def probes(health: HealthMonitor, name: str, result: str) -> float:
    """`hedui_connector_probes_total` of `name` with `result` in this process."""
    value = health.metrics.registry.get_sample_value(
        "hedui_connector_probes_total", {"connector": name, "result": result}
    )
    return value or 0.0


async def tax_queries(http: httpx.AsyncClient) -> int:
    """Household queries the sandbox's tax agency received (its health path is not one)."""
    counts: dict[str, int] = (await http.get("/sandbox/queries")).json()
    return counts.get("tax", 0)


async def until(check: Callable[[], bool], tries: int = 400) -> None:
    """Poll `check` until it holds (bounded; never a timing assertion)."""
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition never held")


def tax_household() -> HouseholdQuery:
    return HouseholdQuery(
        region_code="530103",
        as_of=date(2026, 11, 20),
        members=(MemberQuery(id_number=make_id_number(birth="19700101"), name="李四"),),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )


async def test_probes_check_every_declarative_connector_in_force_and_no_other(
    live_service: LiveService,
    http: httpx.AsyncClient,
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
) -> None:
    """A declarative connector enabled after start-up is probed like a built-in one: a
    partner that is down shows `down` without any verification asking it, and `operational`
    again once it is back; once disabled, it is no longer probed."""
    registry = load_connectors()
    settings = live_service.settings
    configs = build_configs(registry, settings)
    # Before `tax` was enabled; its rounds back to back, as if an interval apart (each
    # round probes only the partners no process probed within the interval).
    health = HealthMonitor(
        registry.names(),
        SETTINGS.model_copy(update={"health_probe_interval_s": 0.001}),
        factory,
        WriteGate(own_engine),
        Metrics(),
    )
    versions = enable_tax(registry, live_service)
    queries = await tax_queries(http)

    async def tax_health() -> tuple[str, str, bool | None]:
        await health.sync()
        async with factory() as session:
            tax = await connector_service.health(session, registry, health, settings, "tax")
        return tax.status.value, tax.reason, tax.last_probe.ok if tax.last_probe else None

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        await http.put("/sandbox/faults/tax", json={"mode": "down"})
        await health.probe_round(registry, configs, client)
        assert await tax_health() == ("down", "health check failing", False)
        assert probes(health, "tax", "failed") == 1

        await http.delete("/sandbox/faults/tax")
        await health.probe_round(registry, configs, client)
        assert await tax_health() == ("operational", "health check passing", True)
        assert probes(health, "tax", "ok") == 1
        assert await tax_queries(http) == queries  # no household was asked about

        registry.set_declared({}, versions)  # disabled
        await health.probe_round(registry, configs, client)
    assert (probes(health, "tax", "ok"), probes(health, "tax", "failed")) == (1, 1)
    assert probes(health, "bank", "ok") == 3  # the round did run


async def test_an_open_breaker_of_a_declarative_connector_is_tried_by_an_early_probe(
    live_service: LiveService,
    http: httpx.AsyncClient,
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
) -> None:
    """The background loop, with no probe round due: a declarative connector whose calls
    opened its breaker is probed as soon as the open period is over, so a partner that is
    back closes it without a verification calling it; a disabled one is not."""
    settings = SETTINGS.model_copy(
        update={"health_probe_interval_s": 3600, "breaker_open_s": 0.2, "breaker_open_max_s": 0.2}
    )
    registry = ConnectorRegistry()
    registry.add(Quiet("steady"))
    configs = {"steady": ConnectorConfig(base_url="http://127.0.0.1:9")}
    health = HealthMonitor(["steady"], settings, factory, WriteGate(own_engine), Metrics())
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        await health.start(registry, configs, client)  # its probe round: before `tax` existed
        try:
            versions = enable_tax(registry, live_service)
            await http.put("/sandbox/faults/tax", json={"mode": "down"})
            fetcher = SourceFetcher(registry, configs, client, health)
            for _ in range(settings.breaker_consecutive):
                outcome = await fetcher.fetch("tax", tax_household())
                assert outcome.call is CallOutcome.unavailable
            breaker = health.breakers["tax"]
            assert breaker.state is BreakerState.open
            await http.delete("/sandbox/faults/tax")
            queries = await tax_queries(http)

            await until(lambda: breaker.state is BreakerState.closed)
            assert probes(health, "tax", "ok") >= 1
            assert await tax_queries(http) == queries  # closed by the probe, not by a call

            registry.set_declared({}, versions)  # disabled
            steady = health.breakers["steady"]
            for name, opened in (("tax", breaker), ("steady", steady)):
                fail(health, name, settings.breaker_consecutive)
                assert opened.state is BreakerState.open
                # Its open period is over just now (after the last probe): a trial is due.
                opened.open_until = time.time()
            await until(lambda: steady.state is BreakerState.closed)  # tried in that round
            assert breaker.state is BreakerState.open  # `tax` was not
            assert "tax" in health.early_probes()
        finally:
            await health.reset()  # no open breaker left in the module's database
            await health.close()


async def test_a_connector_disabled_while_its_health_is_read_is_answered_as_it_was(
    factory: async_sessionmaker[AsyncSession],
    own_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refresher may take a disabled declarative connector out of the registry while
    a health read awaits the database: the read answers with the connector it started
    with (the dashboard drops it at the next refresh), never a 500 from a later lookup."""
    from service.connector.repository import ConnectorRepository

    registry = ConnectorRegistry()
    registry.set_declared({"fleeting": Quiet("fleeting")}, {})
    health = HealthMonitor(["fleeting"], SETTINGS, factory, WriteGate(own_engine), Metrics())
    read_state = ConnectorRepository.state

    async def disabled_meanwhile(self: ConnectorRepository, name: str) -> object:
        registry.set_declared({}, {})
        return await read_state(self, name)

    monkeypatch.setattr(ConnectorRepository, "state", disabled_meanwhile)
    async with factory() as session:
        found = await connector_service.health(session, registry, health, SETTINGS, "fleeting")
    assert found.name == "fleeting"
    assert registry.names() == []  # it was indeed taken out during the read
