"""The in-process scheduler: runs verifications in this process, over the verification
rows themselves (their status and lease are the queue), so the embedded default needs
nothing else running.

A verification stored by this process starts at once (`committed`). A periodic sweep
takes up any unfinished verification whose lease has expired or that nobody claimed:
runs interrupted by a crash, a restart or a database outage, and those stored by a
process that does not run verifications. Several processes may sweep one database: the
claim decides who runs what.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import is_database_unavailable
from service.jobs.periodic import Periodic
from service.jobs.workflow import Claimed, Workflow
from service.models import Verification
from service.verification.repository import VerificationRepository

log = structlog.get_logger(__name__)


class LeaseQueue:
    def __init__(
        self,
        workflow: Workflow,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        runs_here: bool = True,
        concurrency: int = 100,
        sweep_interval_s: float = 5.0,
        fresh_grace_s: float | None = None,
        sweep_unclaimed: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.workflow = workflow
        self.session_factory = session_factory
        self.runs_here = runs_here
        self.concurrency = concurrency
        self.sweep_interval_s = sweep_interval_s
        # A verification nobody has claimed yet is left this long to the process that
        # stored it (which starts it at once); a worker alone takes it without waiting.
        self.fresh_grace_s = sweep_interval_s if fresh_grace_s is None else fresh_grace_s
        # False where every stored verification has a job in a durable queue: then only
        # runs whose lease expired need the sweep.
        self.sweep_unclaimed = sweep_unclaimed
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeper = Periodic(
            "runs_sweep", sweep_interval_s, self.sweep, on_error=_sweep_failed, immediately=True
        )
        self._sweeping = False
        # More due runs than room at the last sweep (a batch): sweep again as runs end,
        # rather than waiting for the next period.
        self._backlog = False
        self._backlog_fresh = False  # the backlog is this process's own batch: no grace
        self._refill: asyncio.Task[None] | None = None

    def claim_at_insert(self) -> Mapping[str, Any]:
        return self.workflow.new_claim() if self.runs_here else {}

    async def enqueue(self, session: AsyncSession, verification: Verification) -> None:
        """A stored `queued` verification is its own job. When it is to run here, it is
        claimed in the same transaction, so its run starts without another round trip."""
        if self.runs_here:
            await self.workflow.claim_new(session, verification)

    def committed(self, verification: Verification) -> None:
        """`verification`, just built for intake and stored, runs here if runs do."""
        if self.runs_here:
            self.run(verification.id, Claimed.fresh(verification))

    async def enqueue_many(self, session: AsyncSession, verifications: list[Verification]) -> None:
        """Stored `queued` and unclaimed: the sweep takes them up as there is room."""

    def committed_many(self, count: int) -> None:
        if self.runs_here and count:
            self._backlog = self._backlog_fresh = True
            self._kick()

    def _kick(self) -> None:
        """Sweep now (once at a time), if this process sweeps at all."""
        if not self._sweeping or (self._refill is not None and not self._refill.done()):
            return
        self._refill = asyncio.create_task(
            self._sweep_quietly(fresh=self._backlog_fresh), name="runs:refill"
        )

    async def _sweep_quietly(self, *, fresh: bool) -> None:
        try:
            await self.sweep(fresh=fresh)
        except Exception as error:
            if not is_database_unavailable(error):
                log.exception("sweep_failed")

    def _ended(self, verification_id: str) -> None:
        self._tasks.pop(verification_id, None)
        # Refill in steps of a quarter of the room, so a backlog costs one query per
        # quarter rather than one per run.
        if self._backlog and self.concurrency - len(self._tasks) >= max(1, self.concurrency // 4):
            self._kick()

    def running(self, verification_id: str) -> bool:
        return verification_id in self._tasks

    def stop(self, verification_id: str) -> None:
        """Cancel the run of the verification here, if there is one (it was withdrawn):
        its partner calls in flight are abandoned. Whatever it would still write is
        conditional on a state the withdrawal has ended, so nothing needs handing back."""
        task = self._tasks.get(verification_id)
        if task is not None:
            task.cancel()

    def in_flight(self) -> int:
        """Runs going on in this process now."""
        return len(self._tasks)

    def run(self, verification_id: str, claimed: Claimed | None = None) -> None:
        """Run the verification here in the background (once, however often asked)."""
        if verification_id in self._tasks:
            return
        task = asyncio.create_task(
            self._run(verification_id, claimed), name=f"verification:{verification_id}"
        )
        self._tasks[verification_id] = task
        task.add_done_callback(lambda _: self._ended(verification_id))

    async def run_now(self, verification_id: str) -> None:
        """Run the verification here and return when the run has ended."""
        self.run(verification_id)
        task = self._tasks.get(verification_id)
        if task is None:
            return
        try:
            await task
        except asyncio.CancelledError:
            # The run alone was stopped (`stop`: withdrawn): it has ended. A cancellation
            # of this caller goes on.
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise

    async def _run(self, verification_id: str, claimed: Claimed | None) -> None:
        try:
            await self.workflow.run(verification_id, claimed)
        except asyncio.CancelledError:
            raise
        except Exception:  # the workflow handles its own failures; this is a last resort
            log.exception("run_crashed", verification_id=verification_id)

    async def start(self) -> None:
        """Sweep from now on (only a process that runs verifications is started)."""
        if not self._sweeping:
            self._sweeping = True
            self._sweeper.start()

    async def sweep(self, *, fresh: bool = False) -> int:
        """Start every due verification this process has room for; how many it started.

        `fresh`: take unclaimed verifications however new (a batch this process stored)."""
        room = self.concurrency - len(self._tasks)
        if room <= 0:
            return 0
        now = self.clock()
        grace = 0.0 if fresh else self.fresh_grace_s
        async with self.session_factory() as session:
            due = await VerificationRepository.from_session(session).due_ids(
                now,
                unclaimed_before=(
                    now - timedelta(seconds=grace) if self.sweep_unclaimed or fresh else None
                ),
                limit=room + len(self._tasks),
            )
        started = [id_ for id_ in due if id_ not in self._tasks][:room]
        # Room filled: there may be more (a batch); sweep again as runs end.
        self._backlog = len(started) == room
        self._backlog_fresh = self._backlog_fresh and self._backlog
        for verification_id in started:
            self.run(verification_id)
        if started and not fresh:
            log.info("verifications_resumed", count=len(started))
        return len(started)

    async def wait_idle(self) -> None:
        """Until every run started here has ended (tests, draining)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        self._backlog = False
        if self._refill is not None:
            self._refill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill
            self._refill = None
        await self._sweeper.close()
        self._sweeping = False
        running = list(self._tasks)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Hand the interrupted runs back at once rather than when their leases expire.
        for verification_id in running:
            with contextlib.suppress(Exception):
                await self.workflow.release(verification_id)


def _sweep_failed(error: BaseException) -> None:
    """A sweep that failed: the database away for a moment is quiet (the next sweep tries
    again), anything else is logged with its traceback."""
    if not is_database_unavailable(error):
        log.error("sweep_failed", exc_info=error)
