"""The PostgreSQL queue: pgqueuer jobs, consumed by `hedui worker` processes.

A job is a verification id. It is inserted on the very connection and in the very
transaction that stores the verification (pgqueuer speaks asyncpg, as our engine does), so
a verification is stored with its job or not at all. pgqueuer's insert trigger notifies
idle workers at commit, and its heartbeats re-pick the job of a worker that died.

Whatever pgqueuer does, the workflow's own lease decides who runs a verification, and a
sweep resumes any run whose lease expired (a job completed by a run that found the lease
still held, a worker killed between two heartbeats): the queue only has to be roughly
right, never exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.jobs.lease import LeaseQueue
from service.jobs.workflow import Workflow
from service.models import Verification

if TYPE_CHECKING:
    from pgqueuer.models import Job

log = structlog.get_logger(__name__)

ENTRYPOINT = "hedui.verify"
BATCH_PRIORITY = -1
ANALYZE_EVERY = 5_000
"""Jobs enqueued by batches between two ANALYZEs of the queue table: a batch fills it by
tens of thousands in minutes, long before autovacuum (when it runs at all) notices, and
while its statistics still say "empty" the workers' dequeue sorts the whole backlog on
every pick (measured: 54 ms per dequeue at 89,000 queued jobs, 2 ms after ANALYZE)."""


class PgQueue:
    def __init__(
        self,
        workflow: Workflow,
        engine: AsyncEngine,
        sweeper: LeaseQueue,
        *,
        concurrency: int = 10,
        heartbeat_s: float = 30.0,
        analyze_every: int = ANALYZE_EVERY,
    ) -> None:
        from pgqueuer.adapters.persistence.qb import (
            QueryBuilderEnvironment,
            QueryQueueBuilder,
            QuerySchedulerBuilder,
        )

        self.workflow = workflow
        self.engine = engine
        self.sweeper = sweeper
        self.concurrency = concurrency
        self.heartbeat = timedelta(seconds=heartbeat_s)
        # Query builders are built once: they read their settings from the environment.
        self._builders = (QueryBuilderEnvironment(), QueryQueueBuilder(), QuerySchedulerBuilder())
        self._consumer: asyncio.Task[None] | None = None
        self._manager: object | None = None
        self.analyze_every = analyze_every
        self._since_analyze = 0
        self._taken: set[str] = set()
        """Verifications whose job this process took and whose run has not ended here:
        handed back at close, since their jobs end with this process however their runs
        were interrupted (pgqueuer drops a job it cancels at shutdown, and a run stopped
        before its claim leaves the verification unclaimed)."""
        self._closing = False

    def claim_at_insert(self) -> Mapping[str, Any]:
        return {}  # a worker claims it when it takes the job

    async def enqueue(self, session: AsyncSession, verification: Verification) -> None:
        from pgqueuer import AsyncpgDriver, Queries

        connection = await session.connection()
        raw = await connection.get_raw_connection()
        qbe, qbq, qbs = self._builders
        queries = Queries(AsyncpgDriver(raw.driver_connection), qbe=qbe, qbq=qbq, qbs=qbs)
        await queries.enqueue(ENTRYPOINT, verification.id.encode(), dedupe_key=verification.id)

    async def enqueue_many(self, session: AsyncSession, verifications: list[Verification]) -> None:
        """One statement for the chunk's jobs (pgqueuer inserts the lists with unnest), and
        every `analyze_every` jobs an ANALYZE of the queue table, in the same transaction
        (it takes a lock that only another ANALYZE or VACUUM waits for)."""
        from pgqueuer import AsyncpgDriver, Queries

        if not verifications:
            return
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        qbe, qbq, qbs = self._builders
        queries = Queries(AsyncpgDriver(raw.driver_connection), qbe=qbe, qbq=qbq, qbs=qbs)
        await queries.enqueue(
            [ENTRYPOINT] * len(verifications),
            [verification.id.encode() for verification in verifications],
            # Below single requests' 0: a household submitted alone is not queued behind a
            # batch of a hundred thousand (pgqueuer takes higher priorities first).
            [BATCH_PRIORITY] * len(verifications),
            dedupe_key=[verification.id for verification in verifications],
        )
        self._since_analyze += len(verifications)
        if self._since_analyze >= self.analyze_every:
            self._since_analyze = 0
            await session.execute(text(f"ANALYZE {qbq.qualified.queue_table}"))

    def committed(self, verification: Verification) -> None:
        """Nothing to do: the job's insert trigger wakes the workers at commit."""

    def committed_many(self, count: int) -> None:
        """Nothing to do either: workers take the jobs as they have room."""

    def running(self, verification_id: str) -> bool:
        return self.sweeper.running(verification_id)

    def stop(self, verification_id: str) -> None:
        self.sweeper.stop(verification_id)

    def in_flight(self) -> int:
        """Runs of this process now (its jobs run through the sweeper's bookkeeping)."""
        return self.sweeper.in_flight()

    async def start(self) -> None:
        await self.sweeper.start()
        if self._consumer is None:
            self._consumer = asyncio.create_task(self._consume_forever(), name="runs:pgqueuer")

    async def close(self) -> None:
        """Take no more jobs, interrupt the runs in flight and hand them back at once (the
        sweeper's close), then stop the consumer. In the other order, the queue's own
        shutdown waited for every run in flight to finish first."""
        self._closing = True
        manager = self._manager
        if manager is not None:
            manager.shutdown.set()  # type: ignore[attr-defined]
        await self.sweeper.close()
        if self._taken:
            # The runs that had claimed theirs were released by the sweeper's close.
            taken, self._taken = sorted(self._taken), set()
            with contextlib.suppress(Exception):
                handed = await self.workflow.hand_back(taken)
                if handed:
                    log.info("verifications_handed_back", count=handed)
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._consumer
            self._consumer = None

    async def _consume_forever(self) -> None:
        """Consume jobs on one dedicated connection; after losing it (a database restart),
        connect again and carry on."""
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries, QueueManager

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        batch = max(1, self.concurrency // 4)
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(url)
                qbe, qbq, qbs = self._builders
                manager = QueueManager(
                    Queries(AsyncpgDriver(connection), qbe=qbe, qbq=qbq, qbs=qbs)
                )
                manager.entrypoint(ENTRYPOINT)(self._run_job)
                self._manager = manager
                log.info("queue_consuming", concurrency=self.concurrency)
                await manager.run(
                    dequeue_timeout=timedelta(seconds=5),
                    batch_size=batch,
                    max_concurrent_tasks=max(self.concurrency, 2 * batch),
                    heartbeat_timeout=self.heartbeat,
                    shutdown_on_listener_failure=True,
                )
                return  # shut down on purpose
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("queue_connection_lost", error_type=type(error).__name__)
            finally:
                self._manager = None
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(1.0)

    async def _run_job(self, job: Job) -> None:
        if job.payload is None:
            return
        verification_id = job.payload.decode()
        # Tracked with the sweeper's runs, so the two never run one verification at once.
        if self._closing:
            self._taken.add(verification_id)  # not run now: handed back by `close`
            return
        if self.sweeper.running(verification_id):
            return
        self._taken.add(verification_id)
        try:
            await self.sweeper.run_now(verification_id)
        finally:
            if not self._closing:
                self._taken.discard(verification_id)
