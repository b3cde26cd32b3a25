"""Runs verifications in the background of the process that accepted them.

A job takes only the verification id. Every source's answer is committed as soon as it
arrives (answers that arrive together share a commit), so a run interrupted by a restart
resumes with the sources still pending and asks no partner twice. (A durable queue on
PostgreSQL can replace `start` later; the job body stays the same.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.assessment import AssessmentInput
from schemas.evidence import HouseholdQuery, MemberQuery
from schemas.verification import SourceStatus, VerificationStatus
from service.db import WriteGate
from service.models import Verification
from service.near_relative.service import near_relative_matches
from service.policy.catalog import PolicyCatalog
from service.report.service import assessment_input, build_report, row_values
from service.verification.fanout import FanOut, SourceOutcome
from service.verification.repository import VerificationRepository

log = structlog.get_logger(__name__)

FINISHED = (VerificationStatus.completed.value, VerificationStatus.failed.value)


class VerificationRunner:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        fanout: FanOut,
        catalog: PolicyCatalog,
        write_gate: WriteGate,
        *,
        poll_interval_s: float = 0.1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session_factory = session_factory
        self.fanout = fanout
        self.catalog = catalog
        self.write_gate = write_gate
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._done: dict[str, asyncio.Event] = {}
        # Results kept for a caller waiting on this process (`Prefer: wait`), so it can answer
        # without reading back what was just written.
        self._awaited: set[str] = set()
        self._results: dict[str, RunResult] = {}

    def start(self, verification_id: str, job: Job | None = None, *, awaited: bool = False) -> None:
        """Run the verification in the background.

        `job` is what the caller already holds (the just-created verification), which saves
        reading it back; without it the run loads its state from the database (resume).
        """
        if verification_id in self._tasks:
            return
        if awaited:
            self._awaited.add(verification_id)
        self._done.setdefault(verification_id, asyncio.Event())
        task = asyncio.create_task(
            self._run(verification_id, job), name=f"verification:{verification_id}"
        )
        self._tasks[verification_id] = task
        task.add_done_callback(lambda _: self._finished(verification_id))

    def _finished(self, verification_id: str) -> None:
        self._tasks.pop(verification_id, None)
        event = self._done.pop(verification_id, None)
        if event is not None:
            event.set()

    def abandon(self, verification_id: str) -> None:
        """Cancel a run whose verification was never stored (its request failed)."""
        self._awaited.discard(verification_id)
        task = self._tasks.get(verification_id)
        if task is not None:
            task.cancel()

    async def wait(self, verification_id: str, timeout_s: float) -> RunResult | None:
        """Return when the verification finished or `timeout_s` passed, whichever is first.

        The result is handed over when the run was started here with `awaited=True`.
        """
        event = self._done.get(verification_id)
        try:
            async with asyncio.timeout(timeout_s):
                if event is not None:
                    await event.wait()
                else:
                    # Not running here (another process, or already done): watch the database.
                    while not await self._is_finished(verification_id):  # noqa: ASYNC110 - no event crosses processes
                        await asyncio.sleep(self.poll_interval_s)
        except TimeoutError:
            pass
        finally:
            self._awaited.discard(verification_id)
        # Popped whatever happened, so a result that landed as the wait timed out cannot linger.
        result = self._results.pop(verification_id, None)
        return result if event is not None and event.is_set() else None

    async def _is_finished(self, verification_id: str) -> bool:
        async with self.session_factory() as session:
            row = await session.get(Verification, verification_id)
            return row is None or row.status in FINISHED

    async def resume_unfinished(self) -> int:
        async with self.session_factory() as session:
            ids = await VerificationRepository.from_session(session).unfinished_ids()
        for verification_id in ids:
            self.start(verification_id)
        if ids:
            log.info("verifications_resumed", count=len(ids))
        return len(ids)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, verification_id: str, job: Job | None) -> None:
        try:
            await self._verify(verification_id, job)
        except asyncio.CancelledError:
            raise  # shutting down: the run resumes from its stored sources on next start
        except Exception as exc:
            log.exception("verification_failed", verification_id=verification_id)
            await self._mark_failed(verification_id, f"internal error ({type(exc).__name__})")

    async def _verify(self, verification_id: str, job: Job | None) -> None:
        if job is None:
            job = await self._load(verification_id)
            if job is None:
                return
        household = HouseholdQuery(
            region_code=job.region_code,
            as_of=job.inputs.as_of,
            members=tuple(
                MemberQuery(id_number=member.id_number, name=member.name)
                for member in job.inputs.members
            ),
        )
        settled: asyncio.Queue[SourceOutcome] = asyncio.Queue()
        async with asyncio.TaskGroup() as group:
            # Partners first: marking the run as started is bookkeeping, off the critical path.
            for source in job.pending:
                group.create_task(self._fetch(verification_id, source, household, settled))
            group.create_task(self._record(job, settled))

    async def _load(self, verification_id: str) -> Job | None:
        async with self.session_factory() as session:
            verification = await VerificationRepository.from_session(session).get(verification_id)
            if verification is None or verification.status in FINISHED:
                return None
            return Job.of(verification)

    async def _fetch(
        self,
        verification_id: str,
        source: str,
        household: HouseholdQuery,
        settled: asyncio.Queue[SourceOutcome],
    ) -> None:
        outcome = await self.fanout.fetch(source, household)
        log.info(
            "source_settled",
            verification_id=verification_id,
            source=source,
            status=outcome.status.value,
            duration_ms=outcome.duration_ms,
            attempts=outcome.attempts,
        )
        settled.put_nowait(outcome)

    async def _record(self, job: Job, settled: asyncio.Queue[SourceOutcome]) -> None:
        """Commit outcomes as they arrive; the last batch commits together with the report.

        Outcomes that arrive while a commit is in flight are written together in the next
        transaction, so six sources cost a few commits rather than six, and no outcome waits
        for a slower source before it is stored.
        """
        if job.stored is not None:
            await job.stored.wait()  # the request that created the verification has committed
        async with self.write_gate, self.session_factory() as session:
            await VerificationRepository.from_session(session).mark_running(
                job.verification_id, self.clock()
            )
            # Looked up while partners are still answering, not after the slowest one.
            matches = await near_relative_matches(
                session, [member.id_number for member in job.inputs.members]
            )
            await session.commit()
        outcomes = {source.source: source for source in job.inputs.sources}
        fresh: list[SourceOutcome] = []
        remaining = len(job.pending)
        while True:
            batch = [await settled.get()] if remaining else []
            while not settled.empty():
                batch.append(settled.get_nowait())
            remaining -= len(batch)
            async with self.write_gate, self.session_factory() as session:
                repository = VerificationRepository.from_session(session)
                for outcome in batch:
                    fresh.append(outcome)
                    outcomes[outcome.source] = outcome.as_stored()
                    await repository.settle_source(job.verification_id, **outcome.row_values())
                if not remaining:
                    inputs = job.inputs.model_copy(
                        update={"sources": tuple(outcomes.values()), "near_relatives": matches}
                    )
                    result = await self._complete(session, job, inputs, fresh)
                await session.commit()
            if not remaining:
                if job.verification_id in self._awaited:
                    self._results[job.verification_id] = result
                return

    async def _complete(
        self, session: AsyncSession, job: Job, inputs: AssessmentInput, fresh: list[SourceOutcome]
    ) -> RunResult:
        """Score the facts (all in hand already) and finish the verification."""
        repository = VerificationRepository.from_session(session)
        policy = self.catalog.resolve(job.region_code, inputs.program, inputs.area, inputs.as_of)
        now = self.clock()
        if policy is None:
            # Checked at intake; only a policy file removed since then gets here.
            await repository.finish(
                job.verification_id,
                status=VerificationStatus.failed.value,
                error="no policy in force for this verification any more",
                completed_at=now,
            )
            return RunResult(VerificationStatus.failed.value, None, now, tuple(fresh))
        report = build_report(
            job.verification_id, job.region_code, inputs, policy, generated_at=now
        )
        await repository.insert_report(row_values(report, policy, inputs))
        await repository.finish(
            job.verification_id,
            status=VerificationStatus.completed.value,
            recommendation=report.recommendation,
            completed_at=now,
        )
        return RunResult(
            VerificationStatus.completed.value, report.recommendation, now, tuple(fresh)
        )

    async def _mark_failed(self, verification_id: str, error: str) -> None:
        async with self.write_gate, self.session_factory() as session:
            verification = await session.get(Verification, verification_id)
            if verification is None:
                return
            verification.status = VerificationStatus.failed.value
            verification.error = error
            verification.completed_at = self.clock()
            await session.commit()


@dataclass(frozen=True)
class RunResult:
    """How a run ended, with the outcomes it gathered."""

    status: str
    recommendation: str | None
    completed_at: datetime
    outcomes: tuple[SourceOutcome, ...]


@dataclass(frozen=True)
class Job:
    """Everything a run needs, copied out of the ORM so no session is shared across tasks."""

    verification_id: str
    region_code: str
    inputs: AssessmentInput
    pending: tuple[str, ...]
    stored: asyncio.Event | None = None
    """Set once the verification's rows are committed; None when they already are."""

    @classmethod
    def of(cls, verification: Verification, stored: asyncio.Event | None = None) -> Job:
        inputs = assessment_input(verification)
        return cls(
            verification_id=verification.id,
            region_code=verification.region_code,
            inputs=inputs,
            pending=tuple(s.source for s in inputs.sources if s.status == SourceStatus.pending),
            stored=stored,
        )
