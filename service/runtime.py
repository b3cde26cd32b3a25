"""build_runtime(): the process's shared resources, built and disposed of in one place.

The API's lifespan and every command that touches the database open the same runtime:
engine, session factory, write gate, outbound HTTP client, connector registry, fan-out,
policy catalog, and the run machinery (workflow, queue, completions; verifications run
here only when asked, `start_runs`). Only `hedui serve` and `hedui db upgrade` migrate
(`migrate_to`); every other user refuses a database whose schema is not at this version's
head, naming the command that brings it there.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.registry import ConnectorRegistry, load_connectors
from service import db
from service.audit.chainer import AuditChainer, checkpoint_policy, open_signer
from service.batch.job import BatchCompletion
from service.config import Settings
from service.connector.metrics import Metrics
from service.connector.monitor import HealthMonitor
from service.connector.refresh import ConnectorRefresher
from service.connector.throttle import LocalThrottle, SharedThrottle
from service.connector.wiring import build_configs, source_plan
from service.crypto.kek import Kek, load_kek
from service.crypto.keyring import Keyring
from service.crypto.refresh import KeyRefresher
from service.crypto.store import open_keyring
from service.http import create_http_client
from service.jobs.collect import Collector
from service.jobs.completion import Completions
from service.jobs.depth import QueueDepth
from service.jobs.lease import LeaseQueue
from service.jobs.periodic import Periodic
from service.jobs.pgqueue import PgQueue
from service.jobs.queue import RunQueue
from service.jobs.workflow import RunResult, Workflow
from service.policy.catalog import PolicyCatalog
from service.recheck.effects import RunEnded
from service.recheck.loop import RecheckLoop
from service.recheck.scheduler import RecheckScheduler
from service.retention.job import RetentionJob
from service.verification.fanout import SourceFetcher
from service.webhook.delivery import WebhookDispatcher

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    write_gate: db.WriteGate
    http_client: httpx.AsyncClient
    registry: ConnectorRegistry
    fetcher: SourceFetcher
    catalog: PolicyCatalog
    workflow: Workflow
    queue: RunQueue
    collector: Collector
    """Collects parked sources' answers (every process that runs verifications, on
    `collecting`'s schedule)."""
    collecting: Periodic
    completions: Completions
    health: HealthMonitor
    """Breakers and pauses every partner call passes (shared through the database)."""
    metrics: Metrics
    refresher: ConnectorRefresher
    chainer: AuditChainer
    """Links recorded audit events into the hash chain (in API and worker processes)."""
    retention: RetentionJob
    queue_depth: QueueDepth
    """Verifications waiting to run, cached for a second (load shedding, `/metrics`)."""
    rechecks: RecheckScheduler
    recheck_loop: RecheckLoop
    webhooks: WebhookDispatcher
    batches: BatchCompletion
    """Marks ended batches completed and records `batch.completed`."""
    keyring: Keyring | None
    """Seals and opens sensitive columns; every session of `session_factory` carries it.
    None only below the schema head (`db upgrade REVISION`)."""
    kek: Kek

    async def start_runs(self, *, here: bool, first_probes_here: bool = True) -> None:
        """Learn of finished runs (for `Prefer: wait`) and, when `here`, run verifications
        in this process (the API in inline mode, `hedui worker`). Connector health (the
        shared breaker state, the counts, active probes) is kept up to date either way;
        without `first_probes_here`, its first round of probes is the caller's."""
        await self.health.start(
            self.registry,
            self.fetcher.configs,
            self.http_client,
            first_probes_here=first_probes_here,
        )
        await self.completions.listen(self.engine)
        self.chainer.start(open_signer(self.settings, create=True))
        self.retention.start()
        if here:
            await self.queue.start()
            self.collecting.start()
            self.recheck_loop.start()
            self.webhooks.start()
            self.batches.start()


def _runs(
    settings: Settings,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    write_gate: db.WriteGate,
    fetcher: SourceFetcher,
    catalog: PolicyCatalog,
    metrics: Metrics,
    *,
    runs_here: bool,
    worker: bool,
) -> tuple[Workflow, RunQueue, Completions, Collector, Periodic]:
    """The run machinery: pgqueuer jobs between API processes and workers on PostgreSQL;
    otherwise the verification rows themselves, with leases. Parked sources are collected
    on the shared periodic scheduler by every process that runs verifications."""
    sqlite = engine.dialect.name == "sqlite"
    completions = Completions(session_factory, poll_interval_s=0.02 if sqlite else 0.5)
    workflow = Workflow(
        session_factory,
        fetcher,
        catalog,
        write_gate,
        lease_s=settings.run_lease_s,
        settle_window_s=settings.settle_window_s,
        on_finished=_counted(completions, metrics),
        # Its waiters answer with the running verification: the rest comes from collects.
        on_parked=completions.finished,
        effects=RunEnded(),
    )
    queue: LeaseQueue | PgQueue
    if sqlite or (runs_here and not worker):
        # The verification rows are the queue: a process claims what it stores in the same
        # transaction and runs it at once; its sweep resumes whatever nobody runs (a dead
        # process's expired leases, and anything stored unclaimed).
        queue = LeaseQueue(
            workflow,
            session_factory,
            runs_here=runs_here and not worker,
            concurrency=settings.run_concurrency,
            # A worker stores nothing itself: it takes new verifications as soon as it
            # sees them, and looks often.
            sweep_interval_s=min(settings.run_sweep_s, 0.5) if worker else settings.run_sweep_s,
            fresh_grace_s=0 if worker else None,
        )
    else:
        # PostgreSQL with workers: API processes (HEDUI_RUN_MODE=queue) enqueue pgqueuer
        # jobs; workers consume them, and sweep for runs whose lease expired.
        sweeper = LeaseQueue(
            workflow,
            session_factory,
            runs_here=False,
            concurrency=settings.run_concurrency,
            sweep_interval_s=settings.run_sweep_s,
            sweep_unclaimed=False,
        )
        queue = PgQueue(
            workflow,
            engine,
            sweeper,
            concurrency=settings.run_concurrency,
            heartbeat_s=settings.run_lease_s,
        )
    completions.running_here = queue.running
    metrics.runs_in_flight.set_function(queue.in_flight)
    collector = Collector(workflow, fetcher, max_failures=settings.collect_max_failures)
    collecting = Periodic("collect", settings.collect_sweep_s, collector.collect_due)
    return workflow, queue, completions, collector, collecting


def _counted(completions: Completions, metrics: Metrics) -> Callable[[str, RunResult], None]:
    def finished(verification_id: str, result: RunResult) -> None:
        metrics.verifications.labels(result.status, result.recommendation or "none").inc()
        completions.finished(verification_id, result)

    return finished


async def _schema(settings: Settings, engine: AsyncEngine, migrate_to: str | None) -> Kek:
    """Migrate to `migrate_to` (sealing older rows with the KEK), or refuse a schema that
    is not current; the KEK either way."""
    if migrate_to is not None:
        kek = kek_of(settings)
        await db.migrate(engine, migrate_to, kek=kek)
        return kek
    # Refused before the key is looked for: a command run where there is no database
    # leaves no new key file behind.
    await db.require_current_schema(engine)
    return kek_of(settings)


async def _keys(
    settings: Settings, engine: AsyncEngine, kek: Kek, *, at_head: bool
) -> tuple[Keyring | None, KeyRefresher | None]:
    """The database's keyring and what keeps it current (started); `db upgrade REVISION` may stop
    before the data keys exist: nothing is sealed then."""
    if not at_head:
        return None, None
    keyring = await open_keyring(engine, kek)
    refresher = KeyRefresher(engine, kek, keyring, settings.key_refresh_s)
    refresher.start()
    return keyring, refresher


def kek_of(settings: Settings) -> Kek:
    """The key-encryption key `settings` name (see `service.crypto.kek`)."""
    return load_kek(
        kek=settings.kek.get_secret_value() if settings.kek is not None else None,
        key_file=settings.key_file,
        database_url=settings.database_url,
    )


def _throttle(engine: AsyncEngine, metrics: Metrics) -> LocalThrottle | SharedThrottle:
    """Partners' agreed limits, held in total over every process sharing PostgreSQL; SQLite
    deployments are one process."""
    if engine.dialect.name == "sqlite":
        return LocalThrottle(metrics)
    return SharedThrottle.connect(engine.url, metrics)


async def _close_in_turn(*closes: Callable[[], Awaitable[object]]) -> None:
    """Close each in this order, one after the other."""
    for close in closes:
        await close()


@asynccontextmanager
async def build_runtime(
    settings: Settings,
    *,
    migrate_to: str | None = None,
    registry: ConnectorRegistry | None = None,
    runs_here: bool | None = None,
    worker: bool = False,
    serving: bool = False,
) -> AsyncIterator[Runtime]:
    """Open the runtime for `settings`; everything it opened is closed on the way out.

    With `migrate_to` (a revision, "head" for `hedui serve`), the schema is brought there
    first; without, a schema that is behind (or ahead) raises `SchemaNotCurrent` before
    anything else is built. `runs_here` (default: `HEDUI_RUN_MODE=inline`) says whether
    verifications this process stores are run by this process; `worker` builds the runtime
    of `hedui worker`, which runs what others stored. `serving`: the runtime of an API
    process; it and a worker's warn about the database's upkeep (the commands do not).
    """
    engine = db.create_engine(settings.database_url)
    try:
        kek = await _schema(settings, engine, migrate_to)
        if (worker or serving) and await db.autovacuum_off(engine):
            log.warning(
                "autovacuum_off",
                hint="PostgreSQL's autovacuum is off: the job queue's table keeps a dead row "
                "per job and its statistics go stale, so picking jobs slows as it grows; "
                "turn autovacuum on (README, Scaling out)",
            )
        connectors = registry or load_connectors()
        configs = build_configs(connectors, settings)
        catalog = PolicyCatalog.load(local=settings.policy_dir)
        for version, standard, province in catalog.below_province() if serving or worker else ():
            log.warning(
                "policy_below_province",
                version=version,
                monthly_standard=standard,
                province_standard=province,
                hint="a prefecture or county sets no less than its province's standard",
            )
        at_head = migrate_to in (None, "head")
        keyring, keys = await _keys(settings, engine, kek, at_head=at_head)
        session_factory = db.create_session_factory(engine, keyring)
        refresher = ConnectorRefresher(
            connectors, session_factory, interval_s=settings.connector_refresh_s
        )
        if at_head:  # `db upgrade REVISION` may stop before the connector tables exist
            await refresher.refresh()  # declarative connectors registered over the API
        for name in refresher.shadowed if serving or worker else ():
            log.warning(
                "declarative_connector_shadowed",
                connector=name,
                origin=connectors.origin(name),
                hint="a built-in or plugin connector holds this name: the declarative "
                "connector registered under it is not in force (uninstall the plugin to use "
                "it again)",
            )
        client = create_http_client(settings)
        write_gate = db.WriteGate(engine)
        metrics = Metrics()
        health = HealthMonitor(
            connectors.names(),
            settings,
            session_factory,
            write_gate,
            metrics,
            throttle=(throttle := _throttle(engine, metrics)),
        )
        fetcher = SourceFetcher(
            connectors,
            configs,
            client,
            health,
            deadline_s=settings.verification_deadline_s,
            throttle=throttle,
        )
        if at_head:
            refresher.start()
        chainer = AuditChainer(
            session_factory,
            interval_s=settings.audit_chain_interval_s,
            policy=checkpoint_policy(settings),
        )
        retention = RetentionJob(
            session_factory,
            days=settings.retention_raw_days,
            interval_s=settings.retention_interval_s,
        )
        queue_depth = QueueDepth(session_factory)
        metrics.queue_depth.set_function(lambda: queue_depth.last or 0)
        workflow, queue, completions, collector, collecting = _runs(
            settings,
            engine,
            session_factory,
            write_gate,
            fetcher,
            catalog,
            metrics,
            runs_here=settings.run_mode == "inline" if runs_here is None else runs_here,
            worker=worker,
        )
        rechecks = RecheckScheduler(
            session_factory,
            catalog,
            queue,
            write_gate,
            lambda: source_plan(connectors),
            max_in_flight=settings.recheck_max_in_flight,
        )
        webhooks = WebhookDispatcher(
            session_factory,
            client,
            allowed_hosts=settings.webhook_host_list(),
            poll_s=settings.webhook_poll_s,
            backoff_s=settings.webhook_backoff_s,
            max_attempts=settings.webhook_max_attempts,
            timeout_s=settings.webhook_timeout_s,
        )
        recheck_loop = RecheckLoop(rechecks, settings.today, interval_s=settings.recheck_interval_s)
        batches = BatchCompletion(session_factory, write_gate, interval_s=settings.batch_sweep_s)
        try:
            yield Runtime(
                settings=settings,
                engine=engine,
                session_factory=session_factory,
                write_gate=write_gate,
                http_client=client,
                registry=connectors,
                fetcher=fetcher,
                catalog=catalog,
                workflow=workflow,
                queue=queue,
                collector=collector,
                collecting=collecting,
                completions=completions,
                health=health,
                metrics=metrics,
                refresher=refresher,
                chainer=chainer,
                retention=retention,
                queue_depth=queue_depth,
                rechecks=rechecks,
                recheck_loop=recheck_loop,
                webhooks=webhooks,
                batches=batches,
                keyring=keyring,
                kek=kek,
            )
        finally:
            try:
                if keys is not None:
                    await keys.close()
                await _close_in_turn(
                    recheck_loop.close,
                    batches.close,
                    retention.close,
                    chainer.close,
                    webhooks.close,
                    refresher.close,
                    health.close,
                    collecting.close,
                    queue.close,
                    completions.close,
                )
            finally:
                await client.aclose()
                await throttle.aclose()
    finally:
        await engine.dispose()
