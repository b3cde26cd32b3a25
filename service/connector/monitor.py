"""The connectors' health in this process: breakers, pauses, counts, probes.

The hot path (`admit`, `record`) touches memory only. `sync` (every `health_sync_s`, in
the background) writes what happened here to the database and reads what every other
process wrote, so all processes (API, workers, the dashboard) agree within that period:

- breaker transitions are written with a compare-and-set on a version; a process that
  loses the race adopts the winner's state. Each process judges the failure window from the
  calls it made itself; the open/half-open/closed state itself is shared.
- pauses are written by the operator's request and read back by every process;
- counts go to per-process rows of `connector_buckets`, summed by readers; a process alone
  writes its rows and remembers what they hold, so a sync writes every connector's counts,
  signals and events in one statement each, whatever the number of connectors (it was a
  read and a write per connector and bucket, every `health_sync_s`, in every process);
- probe turns: a process probes a connector only after taking its turn in the database
  (`take_probe_turn`, one conditional UPDATE), so the deployment as a whole, not each
  process, asks a partner once per `health_probe_interval_s`; the others read the result.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from connectors.base import CheckResult, Connector, ConnectorConfig
from connectors.registry import ConnectorRegistry
from connectors.retry_budget import RetryBudget
from schemas.connector import BreakerState, CallOutcome, Pause
from schemas.identity import redact_id_numbers
from service.config import Settings
from service.connector.breaker import Admission, Breaker, BreakerPolicy
from service.connector.meter import Attempt
from service.connector.metrics import Metrics
from service.connector.repository import ConnectorRepository
from service.connector.stats import (
    BREAKER_FAILURES,
    BREAKER_NEUTRAL,
    PARTNER_FAILURES,
    REFUSED,
    Bucket,
    merged,
)
from service.connector.throttle import Throttle
from service.connector.wiring import NOT_CHECKED, PAUSED_NOT_CALLED, ask_check, config_of
from service.db import WriteGate
from service.jobs.periodic import Periodic
from service.models import ConnectorState
from service.models.base import new_id

log = structlog.get_logger(__name__)

CIRCUIT_OPEN = "circuit open"
PAUSED = "paused by operator"
DETAIL_LIMIT = 300
ERRORS_KEPT_PER_SYNC = 3
BUCKETS_KEPT = timedelta(hours=25)
ERRORS_KEPT = timedelta(days=7)
PAUSE_GRACE = timedelta(seconds=10)
TOTALS_KEPT = timedelta(minutes=10)
"""How long a process remembers what it stored in a bucket's row (at least two buckets'
width): counts of a bucket it remembers are written whole, without reading the row first
(`_sync`); only the clock stepping back that far brings counts for one it has forgotten."""
EARLY_PROBE_GAP_S = 10.0
"""A connector whose real calls fail is probed at once, then at most this often; so is
one whose last probe failed (a partner that is down is watched closely until it is back)."""


def pause_of(row: ConnectorState, read_at: datetime) -> Pause | None:
    """The operator's pause a connector's stored state holds, if any."""
    if not row.paused:
        return None
    return Pause(
        paused_by=row.paused_by or "",
        reason=row.paused_reason or "",
        paused_at=row.paused_at or read_at,
    )


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        window=settings.breaker_window,
        min_calls=min(settings.breaker_min_calls, settings.breaker_window),
        failure_rate=settings.breaker_failure_rate,
        consecutive=settings.breaker_consecutive,
        open_s=settings.breaker_open_s,
        open_max_s=max(settings.breaker_open_max_s, settings.breaker_open_s),
        half_open_calls=settings.breaker_half_open_calls,
    )


@dataclass(frozen=True)
class Ticket:
    """Permission to call a partner, handed back to `record` when the call is over."""

    connector: str
    admission: Admission


@dataclass(frozen=True)
class Refusal:
    connector: str
    outcome: CallOutcome
    detail: str


@dataclass
class _Signals:
    """What happened here since the last sync, per connector."""

    last_success_at: datetime | None = None
    errors: list[tuple[datetime, CallOutcome, str]] = field(default_factory=list)
    probe: tuple[datetime, bool, float | None, str | None] | None = None


class HealthMonitor:
    def __init__(
        self,
        names: Sequence[str],
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        write_gate: WriteGate,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        throttle: Throttle | None = None,
    ) -> None:
        self.names = list(names)
        self.throttle = throttle
        """Probes take their turns under the partners' agreed limits too."""
        self.settings = settings
        self.session_factory = session_factory
        self.write_gate = write_gate
        self.metrics = metrics
        self.clock = clock
        self.process = new_id()
        policy = breaker_policy(settings)
        self.breakers = {name: Breaker(policy) for name in self.names}
        self.retry_budgets = {name: self._retry_budget(name) for name in self.names}
        self.pauses: dict[str, Pause | None] = dict.fromkeys(self.names)
        self._buckets: dict[tuple[str, datetime], Bucket] = {}
        """Counts not written yet, by connector and bucket start."""
        self._stored: dict[tuple[str, datetime], Bucket] = {}
        """What this process's rows of `connector_buckets` hold (it alone writes them), for
        the buckets that started at `_forgotten_before` or later."""
        self._forgotten_before = datetime.min.replace(tzinfo=UTC)
        self._bucket_start: tuple[float, datetime] = (math.nan, datetime.min.replace(tzinfo=UTC))
        self._signals: dict[str, _Signals] = {name: _Signals() for name in self.names}
        self._transitions: list[tuple[str, BreakerState, datetime, str | None]] = []
        self._pause_pending: dict[str, datetime] = {}
        self._loop: Periodic | None = None
        self._probes_from = 0.0
        """Before this (`clock()`), the loop starts no round of probes (`start`)."""
        self._last_probe_started: dict[str, datetime] = {}
        """When a probe of each connector last started in any process, as this process last
        read or wrote it: a connector probed elsewhere within the interval is not asked
        for its turn again (the database decides; this only spares it the UPDATE)."""
        self._last_prune = 0.0
        self._lock = asyncio.Lock()
        self._suspects: set[str] = set()
        """Connectors whose real calls failed since their last probe, or whose last probe
        failed."""
        self._probing: set[str] = set()
        self._probed_at: dict[str, float] = {}
        self._rounds: set[asyncio.Task[dict[str, CheckResult]]] = set()
        for name in self.names:
            metrics.connector(name)

    # -- the hot path: memory only ------------------------------------------------------

    def track(self, name: str) -> None:
        """Account for a connector registered after start-up (a declarative one) too."""
        if name in self.breakers:
            return
        self.names.append(name)
        self.breakers[name] = Breaker(breaker_policy(self.settings))
        self.retry_budgets[name] = self._retry_budget(name)
        self.pauses[name] = None
        self._signals[name] = _Signals()
        self.metrics.connector(name)

    def follow(self, registry: ConnectorRegistry) -> None:
        """Account for every connector in force in `registry`, one enabled since start-up
        included, so its shared state is read and written from now on."""
        for name in registry.names():
            self.track(name)

    def _retry_budget(self, name: str) -> RetryBudget:
        return RetryBudget(
            name,
            ratio=self.settings.retry_budget_ratio,
            min_retries=self.settings.retry_budget_min_retries,
            window_s=self.settings.retry_budget_window_s,
        )

    def retry_budget(self, name: str) -> RetryBudget:
        """The retry budget every fetch of `name` in this process draws on."""
        self.track(name)
        return self.retry_budgets[name]

    def admit(self, name: str) -> Ticket | Refusal:
        """May `name`'s partner be called now? Never touches the database."""
        self.track(name)
        if self.paused(name):
            return Refusal(name, CallOutcome.paused, PAUSED)
        breaker = self.breakers[name]
        before = breaker.state
        admission = breaker.admit(self.clock())
        self._noticed(name, before)
        if admission is Admission.refused:
            return Refusal(name, CallOutcome.circuit_open, CIRCUIT_OPEN)
        self.metrics.in_flight.labels(name).inc()
        return Ticket(name, admission)

    def record(
        self,
        grant: Ticket | Refusal,
        outcome: CallOutcome,
        *,
        latency_ms: float = 0.0,
        attempts: Sequence[Attempt] = (),
        detail: str | None = None,
    ) -> None:
        """Account for one fetch: breaker, counts, metrics, last signals."""
        name = grant.connector
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        self._bucket(name, now).add_call(outcome, latency_ms, len(attempts))
        self.metrics.calls.labels(name, outcome.value).inc()
        if isinstance(grant, Ticket):
            self.metrics.in_flight.labels(name).dec()
            self.metrics.latency.labels(name).observe(latency_ms / 1000)
            for attempt in attempts:
                self.metrics.requests.labels(name, _status_class(attempt)).inc()
            self._retried(name, attempts)
            breaker = self.breakers[name]
            before = breaker.state
            failed = None if outcome in BREAKER_NEUTRAL else outcome in BREAKER_FAILURES
            breaker.record(grant.admission, failed=failed, now=now)
            self._noticed(name, before)
        signals = self._signals[name]
        if outcome in (CallOutcome.ok, CallOutcome.no_record):
            signals.last_success_at = at
        elif outcome not in REFUSED:
            signals.errors.append((at, outcome, _masked(detail or outcome.value)))
            del signals.errors[:-ERRORS_KEPT_PER_SYNC]
        if outcome in PARTNER_FAILURES:
            # Garbage too: fast, so not the breaker's business, but the partner's failure.
            self._suspects.add(name)

    def cancelled(self, grant: Ticket, attempts: Sequence[Attempt] = ()) -> None:
        """The fetch was cancelled (shutdown, deadline of the whole run): free its slot."""
        self.metrics.in_flight.labels(grant.connector).dec()
        self._retried(grant.connector, attempts)
        self.breakers[grant.connector].record(grant.admission, failed=None, now=self.clock())

    def _retried(self, name: str, attempts: Sequence[Attempt]) -> None:
        """Count and log each retry among `attempts` (polls and first requests are not)."""
        for attempt in attempts:
            if attempt.retry is None:
                continue
            self.metrics.retries.labels(name).inc()
            log.debug(
                "connector_retry",
                source=name,
                attempt=attempt.retry.attempt,
                reason=attempt.retry.reason,
            )

    def unsynced(self, name: str | None, since: datetime) -> list[tuple[str, datetime, Bucket]]:
        """This process's counts not yet written to the database (`_sync` every few
        seconds), of buckets that started at `since` or later: `name`'s, or everyone's.
        A reader adds them to the rows it reads, so the calls just made count at once."""
        return [
            (connector, start, bucket)
            for (connector, start), bucket in self._buckets.items()
            if (name is None or connector == name) and start >= since
        ]

    def _bucket(self, name: str, now: float) -> Bucket:
        width = self.settings.health_bucket_s
        start_s = now - now % width
        if start_s != self._bucket_start[0]:
            # Every call of the same bucket has the same start: converted once per bucket.
            self._bucket_start = (start_s, datetime.fromtimestamp(start_s, UTC))
        key = (name, self._bucket_start[1])
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket()
        return bucket

    def _noticed(self, name: str, before: BreakerState) -> None:
        breaker = self.breakers[name]
        state = breaker.state
        if state is not before:
            at = datetime.fromtimestamp(self.clock(), UTC)
            self._transitions.append((name, state, at, breaker.reason))
            self.metrics.set_breaker(name, state)
            # An opening is an outage an operator should see whatever the log level (a
            # warning); the breaker closing again is news, not trouble.
            level = log.info if state is BreakerState.closed else log.warning
            level(
                "breaker_changed",
                source=name,
                state=state.value,
                was=before.value,
                reason=breaker.reason,
            )

    # -- probes ----------------------------------------------------------------------------

    async def probe_round(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        client: httpx.AsyncClient,
    ) -> dict[str, CheckResult]:
        """One round of probes: call the `check()` of every connector in force (built-in,
        plugin and enabled declarative alike, as `registry` holds them now: one enabled
        since start-up is probed, one disabled since is not) whose probe is due, that is
        no process on this database started one within `health_probe_interval_s`, and
        whose turn this process takes (`_take_turns`): the deployment asks each partner
        once per interval, however many processes it runs. An open breaker whose time is
        up uses the probe as its trial call, so a quiet connector recovers without waiting
        for traffic. A paused connector is not probed: a pause stops every call to its
        partner, health checks included. What each check this process made found, by
        name (a connector probed elsewhere is not in it: its result is shared at sync)."""
        latest = self.clock() - self.settings.health_probe_interval_s
        return await self._probe_turns(
            registry, configs, client, dict.fromkeys(registry.names(), latest)
        )

    async def _probe_turns(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        client: httpx.AsyncClient,
        latest: dict[str, float],
    ) -> dict[str, CheckResult]:
        """Probe each connector of `latest` in force, not paused and not being probed here,
        whose last probe (in any process) started at `latest[name]` or before, once this
        process has taken its turn."""
        candidates = self._askable(registry, configs, latest)
        won = await self._take_turns({c.name: latest[c.name] for c, _ in candidates})
        probed = [(connector, config) for connector, config in candidates if connector.name in won]
        found = await asyncio.gather(*(self._probed(c, config, client) for c, config in probed))
        return {
            connector.name: result for (connector, _), result in zip(probed, found, strict=True)
        }

    def _askable(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        latest: dict[str, float],
    ) -> list[tuple[Connector, ConnectorConfig]]:
        """Those of `latest`'s connectors in force, not paused, not being probed here and
        not probed by any process (as far as this one knows) since `latest[name]`."""
        return [
            (connector, config)
            for connector, config in _in_force(registry, configs, latest)
            if connector.name not in self._probing
            and not self.paused(connector.name)
            and self._turn_free(connector.name, latest[connector.name])
        ]

    def _turn_free(self, name: str, latest: float) -> bool:
        """No probe of `name` started after `latest`, as far as this process knows."""
        started = self._last_probe_started.get(name)
        return started is None or started.timestamp() <= latest

    async def _take_turns(self, latest: dict[str, float]) -> set[str]:
        """Of `latest`'s connectors, those whose probe turn this process takes now: one
        conditional UPDATE each, which only one process can win while no probe started
        after `latest[name]` (`ConnectorRepository.take_probe_turn`). A paused connector
        (by any process, read or not) is never won."""
        if not latest:
            return set()
        at = datetime.fromtimestamp(self.clock(), UTC)

        async def take() -> set[str]:
            async with self.write_gate, self.session_factory() as session:
                repository = ConnectorRepository.from_session(session)
                await repository.ensure(list(latest), at)
                won = {
                    name
                    for name, last in latest.items()
                    if await repository.take_probe_turn(name, at, datetime.fromtimestamp(last, UTC))
                }
                await session.commit()
            return won

        won = await _once_more_if_rows_collide(take)
        for name in won:
            self._last_probe_started[name] = at
        return won

    async def unanswered(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        client: httpx.AsyncClient,
    ) -> tuple[list[str], dict[str, ConnectorConfig]]:
        """Which connectors in force (not paused) fail their health check now, within their
        timeout, and which were asked, with the config each was asked with (a connector
        disabled meanwhile is in no registry any more): a look before a run that would
        store every household's report incomplete. Each check goes through the partner's
        throttle, as a probe does (`_check`); nothing of it is recorded (counts, breakers)."""
        asked = [
            (connector, config)
            for connector, config in _in_force(registry, configs, registry.names())
            if not self.paused(connector.name)
        ]
        checked = await asyncio.gather(*(self._check(c, config, client) for c, config in asked))
        failed = sorted(
            connector.name
            for (connector, _), (result, _) in zip(asked, checked, strict=True)
            if not result.ok
        )
        return failed, {
            connector.name: config
            for connector, config in sorted(asked, key=lambda pair: pair[0].name)
        }

    def paused(self, name: str) -> bool:
        """Has an operator paused `name` (as this process last read it)?"""
        return self.pauses.get(name) is not None

    def early_probes(self) -> list[str]:
        """Connectors to probe before their turn, so that their status follows what really
        happens rather than the probe schedule: a breaker whose open period is over (the
        probe is its trial call, so a partner that is back closes it without waiting for
        traffic), and a connector whose real calls failed since its last probe (at most
        every `EARLY_PROBE_GAP_S`), so a failing partner is confirmed down at once; a failed
        probe is repeated as often, so it is seen to be back as soon. Never a paused one,
        nor one another process has already probed that early."""
        return list(self._early(self.clock()))

    def _early(self, now: float) -> dict[str, float]:
        """`early_probes`, each with the latest start of the last probe (in any process)
        that leaves it due: the open period's end for a breaker's trial (one trial per
        open period, whichever process makes it), `EARLY_PROBE_GAP_S` ago for a suspect."""
        due = {}
        for name in self.names:
            if name in self._probing or self.paused(name):
                continue
            breaker = self.breakers[name]
            if breaker.state is BreakerState.open:
                if breaker.open_until is not None and now >= breaker.open_until:
                    due[name] = breaker.open_until
            elif (
                name in self._suspects
                and now - self._probed_at.get(name, -EARLY_PROBE_GAP_S) >= EARLY_PROBE_GAP_S
            ):
                due[name] = now - EARLY_PROBE_GAP_S
        return {name: latest for name, latest in due.items() if self._turn_free(name, latest)}

    def _due(self, interval: float) -> dict[str, float]:
        """The connectors a round of the loop asks a turn for, each with the latest start
        of the last probe that leaves it due: every one at its interval (once `start` lets
        the loop probe), and the early ones sooner."""
        now = self.clock()
        due = dict.fromkeys(self.names, now - interval) if now >= self._probes_from else {}
        for name, latest in self._early(now).items():
            due[name] = max(due.get(name, latest), latest)
        return due

    async def probe(
        self, connector: Connector, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> bool:
        """Call `connector`'s `check()` with `config` now, whatever the schedule and the
        other processes' turns, and account for it (counts, breaker, last probe); True
        when the check passed. A paused connector's partner is not called and nothing of
        it changes: False at once."""
        return (await self._probed(connector, config, client)).ok

    async def _probed(
        self, connector: Connector, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> CheckResult:
        name = connector.name
        self.track(name)
        if self.paused(name):
            return CheckResult(ok=False, detail=PAUSED_NOT_CALLED)
        self._probing.add(name)
        self._probed_at[name] = self.clock()
        self._suspects.discard(name)
        try:
            return await self._probe(connector, config, client)
        finally:
            self._probing.discard(name)

    async def _check(
        self, connector: Connector, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> tuple[CheckResult, bool]:
        """`connector`'s `check()` within its time budget and through the partner's shared
        throttle, as every call to it is (`ask_check`); a pause that lands meanwhile stops
        it at its next request (a retry). Nothing is recorded here."""
        name = connector.name
        return await ask_check(
            connector,
            config,
            client,
            config.timeout_s,
            self.throttle,
            paused=lambda: self.paused(name),
        )

    async def _probe(
        self, connector: Connector, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> CheckResult:
        name = connector.name
        breaker = self.breakers[name]
        admission = None
        if breaker.state is not BreakerState.closed:
            before = breaker.state
            admission = breaker.admit(self.clock())
            self._noticed(name, before)
        started = time.perf_counter()
        result, starved = await self._check(connector, config, client)
        ok, detail = result.ok, result.detail
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        now = self.clock()
        if starved or self.paused(name):
            # The partner's agreed limits were used up by real calls, or an operator paused
            # it while the probe ran: this probe says nothing of its health, and a pause
            # leaves the partner's breaker and health as they were.
            if admission is Admission.trial:
                breaker.record(admission, failed=None, now=now)
            detail = PAUSED_NOT_CALLED if self.paused(name) else NOT_CHECKED
            return CheckResult(ok=False, detail=detail)
        if admission is Admission.trial:
            was: BreakerState = breaker.state
            breaker.record(admission, failed=not ok, now=now)
            self._noticed(name, was)
        self._bucket(name, now).add_probe(ok)
        if not ok:
            self._suspects.add(name)
        self.metrics.probes.labels(name, "ok" if ok else "failed").inc()
        at = datetime.fromtimestamp(now, UTC)
        self._signals[name].probe = (at, ok, latency_ms, _masked(detail) if detail else None)
        return CheckResult(ok=ok, detail=detail)

    # -- sharing with the other processes ---------------------------------------------------

    async def sync(self) -> None:
        """Write this process's news, read everyone's shared state."""
        async with self._lock:
            await _once_more_if_rows_collide(self._sync)

    async def _sync(self) -> None:
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        # The names of now: a connector tracked while this awaits the database is synced
        # next time (its row is not among those read here).
        names = list(self.names)
        buckets, self._buckets = self._buckets, {}
        signals = self._signals
        self._signals = {name: _Signals() for name in names}
        transitions, self._transitions = self._transitions, []
        shared: list[str] = []  # the breakers this sync wrote (bumping their versions)
        try:
            async with self.write_gate, self.session_factory() as session:
                repository = ConnectorRepository.from_session(session)
                rows = await repository.ensure(names, at)
                stored = await self._store_buckets(repository, buckets)
                await repository.set_signals(
                    {name: _signal_columns(news) for name, news in signals.items()}
                )
                await repository.add_events(
                    [
                        (name, f"error:{outcome.value}", when, None, detail)
                        for name, news in signals.items()
                        for when, outcome, detail in news.errors
                    ]
                    + [
                        (name, f"breaker_{state.value}", when, None, reason)
                        for name, state, when, reason in transitions
                    ]
                )
                for name in names:
                    if await self._share_breaker(repository, name, rows[name], at):
                        shared.append(name)
                    self._read_turn(name, rows[name])
                if now - self._last_prune > 600:
                    await repository.prune(at - BUCKETS_KEPT, at - ERRORS_KEPT)
                    self._last_prune = now
                await session.commit()
            self._remember(stored, at)
        except BaseException:
            # Nothing is lost: what was taken out goes back for the next attempt.
            for name in shared:
                # Not stored after all: this process's state is still news to write, not
                # a version ahead of the database's (which it would then take for newer).
                self.breakers[name].version -= 1
                self.breakers[name].changed = True
            for key, delta in buckets.items():
                self._buckets.setdefault(key, Bucket()).merge(delta)
            self._transitions[:0] = transitions
            for name, news in signals.items():
                current = self._signals[name]
                current.last_success_at = current.last_success_at or news.last_success_at
                current.errors[:0] = news.errors
                current.probe = current.probe or news.probe
            raise

    async def _store_buckets(
        self, repository: ConnectorRepository, buckets: dict[tuple[str, datetime], Bucket]
    ) -> dict[tuple[str, datetime], Bucket]:
        """Each bucket's new total in this process's row, all written whole in one statement:
        what the process remembers its row holds (it stored it, or the row cannot exist
        yet), else what the row is read to hold (a bucket it stored too long ago: the clock
        stepped back), and the counts since. The totals stored."""
        totals: dict[tuple[str, datetime], Bucket] = {}
        for key, delta in buckets.items():
            before = self._stored.get(key)
            if before is None and key[1] < self._forgotten_before:
                before = await repository.bucket_total(key[0], key[1], self.process)
            totals[key] = merged((delta,) if before is None else (before, delta))
        await repository.store_buckets(self.process, totals)
        return totals

    def _remember(self, stored: dict[tuple[str, datetime], Bucket], at: datetime) -> None:
        """The totals just committed; those of buckets older than `TOTALS_KEPT` (or two
        buckets) forgotten."""
        self._stored.update(stored)
        cutoff = at - max(TOTALS_KEPT, timedelta(seconds=2 * self.settings.health_bucket_s))
        if cutoff > self._forgotten_before:
            self._forgotten_before = cutoff
            for key in [key for key in self._stored if key[1] < cutoff]:
                del self._stored[key]

    async def _share_breaker(
        self, repository: ConnectorRepository, name: str, row: ConnectorState, at: datetime
    ) -> bool:
        """Write this process's breaker change, or adopt the shared state; whether it
        wrote (its version bumped, for the transaction's commit to make true)."""
        breaker = self.breakers[name]
        wrote = False
        if breaker.changed:
            until = (
                datetime.fromtimestamp(breaker.open_until, UTC)
                if breaker.open_until is not None
                else None
            )
            written = await repository.write_breaker(
                name,
                expected_version=breaker.version,
                state=breaker.state,
                until=until,
                open_s=breaker.open_s,
                now=at,
            )
            if written:
                breaker.version += 1
                breaker.changed = False
                wrote = True
            else:
                await repository.session.refresh(row)
                self._adopt(name, row)
        elif row.breaker_version != breaker.version:
            self._adopt(name, row)
        pending = self._pause_pending.get(name)
        if pending is not None:
            # This process stored a pause or resume itself; a read older than that write
            # must not undo it here (the write may commit just after this read).
            if row.updated_at < pending and at - pending < PAUSE_GRACE:
                return wrote
            del self._pause_pending[name]
        self.pauses[name] = pause_of(row, at)
        self.metrics.set_paused(name, row.paused)
        return wrote

    def _read_turn(self, name: str, row: ConnectorState) -> None:
        started = row.last_probe_started_at
        known = self._last_probe_started.get(name)
        if started is not None and (known is None or started > known):
            self._last_probe_started[name] = started

    def _adopt(self, name: str, row: ConnectorState) -> None:
        breaker = self.breakers[name]
        before = breaker.state
        until = row.breaker_until.timestamp() if row.breaker_until else None
        breaker.adopt(BreakerState(row.breaker), until, row.breaker_open_s, row.breaker_version)
        if breaker.state is not before:
            self.metrics.set_breaker(name, breaker.state)
            log.info("breaker_adopted", source=name, state=breaker.state.value)

    def set_pause(self, name: str, pause: Pause | None, at: datetime) -> None:
        """Apply a pause this process just stored (others see it at their next sync)."""
        self.pauses[name] = pause
        self._pause_pending[name] = at
        self.metrics.set_paused(name, pause is not None)

    async def reset(self) -> None:
        """Close every breaker and forget this process's counts (tests, and a fresh start)."""
        for breaker in self.breakers.values():
            breaker.reset()
        await self.sync()

    # -- the background loop ------------------------------------------------------------

    async def start(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        client: httpx.AsyncClient,
        *,
        first_probes_here: bool = True,
    ) -> None:
        """Read the shared state once, then keep it in sync in the background. Without
        `first_probes_here`, the first round of probes is the caller's (`hedui serve`'s
        start-up check, which waits for its server to listen): the loop's first is one
        interval later, so a partner is not asked twice at start-up."""
        if self._loop is not None:
            return
        await self.sync()
        interval = self.settings.health_probe_interval_s
        self._probes_from = self.clock() + (0 if first_probes_here else interval)
        self._loop = Periodic(
            "health_sync",
            self.settings.health_sync_s,
            lambda: self.round(registry, configs, client),
            immediately=True,
        )
        self._loop.start()

    async def close(self) -> None:
        if self._loop is not None:
            await self._loop.close()
            self._loop = None
        for task in self._rounds:
            task.cancel()
        await asyncio.gather(*self._rounds, return_exceptions=True)

    async def round(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        client: httpx.AsyncClient,
    ) -> None:
        """One round of the background work (every `health_sync_s`, scheduled by `start`):
        follow the connectors in force, start the probes that are due (one per
        `health_probe_interval_s` over every process on the database, and early, see
        `early_probes`; none with probes off), then sync with the other processes, which
        brings their probes' results and turns. A round that fails (the database away for
        a while) is logged, and the next one runs as planned."""
        interval = self.settings.health_probe_interval_s
        self.follow(registry)  # declarative connectors enabled since the last round
        due = self._due(interval) if interval > 0 else {}
        # A declarative connector disabled since keeps its breaker here, but is not probed.
        if self._askable(registry, configs, due):
            probing = asyncio.create_task(self._probe_turns(registry, configs, client, due))
            probing.add_done_callback(_log_failure)
            # Cancelled with the monitor (`close`): a round still asking as the process
            # ends would call through a closed client.
            self._rounds.add(probing)
            probing.add_done_callback(self._rounds.discard)
        await self.sync()


def _in_force(
    registry: ConnectorRegistry, configs: dict[str, ConnectorConfig], names: Iterable[str]
) -> list[tuple[Connector, ConnectorConfig]]:
    """Each of `names` still in force, with the connector and config a verification would
    call it with now; a name no longer in force (a declarative connector disabled since)
    is left out."""
    found = []
    for name in names:
        try:
            connector = registry.get(name)
            config = config_of(connector, configs)
        except KeyError:  # not in force (UnknownConnectorError), or no settings for it
            continue
        found.append((connector, config))
    return found


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("probes_failed", error_type=type(task.exception()).__name__)


def _status_class(attempt: Attempt) -> str:
    if attempt.status_code is None:
        return "transport_error"
    return f"{attempt.status_code // 100}xx"


def _masked(text: str) -> str:
    text = redact_id_numbers(text)
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def _signal_columns(news: _Signals) -> dict[str, object]:
    """The columns of a connector's state that `news` changes (its last success, error,
    probe)."""
    values: dict[str, object] = {}
    if news.last_success_at is not None:
        values["last_success_at"] = news.last_success_at
    if news.errors:
        when, outcome, detail = news.errors[-1]
        values.update(last_error_at=when, last_error_outcome=outcome.value, last_error=detail)
    if news.probe is not None:
        probed_at, ok, latency, probe_detail = news.probe
        values.update(
            last_probe_at=probed_at,
            last_probe_ok=ok,
            last_probe_latency_ms=latency,
            last_probe_detail=probe_detail,
        )
    return values


T = TypeVar("T")


async def _once_more_if_rows_collide(work: Callable[[], Awaitable[T]]) -> T:
    """`work()`, once more if it failed on a unique key: two processes creating the same
    connectors' rows at once (`ConnectorRepository.ensure`); the second time they exist."""
    try:
        return await work()
    except IntegrityError:
        return await work()
