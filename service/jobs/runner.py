"""Runs verifications in the background of the process that accepted them.

A job takes only the verification id. Every source's answer is committed as soon as it
arrives, so a run interrupted by a restart resumes with the sources still pending and
asks no partner twice. (A durable queue on PostgreSQL can replace `start` later; the job
body stays the same.)
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.evidence import HouseholdQuery, MemberQuery
from schemas.verification import VerificationStatus
from service.models import SourceResult, Verification
from service.policy.catalog import PolicyCatalog
from service.report.service import build_report, to_row
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
        *,
        poll_interval_s: float = 0.1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session_factory = session_factory
        self.fanout = fanout
        self.catalog = catalog
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._done: dict[str, asyncio.Event] = {}

    def start(self, verification_id: str) -> None:
        if verification_id in self._tasks:
            return
        self._done.setdefault(verification_id, asyncio.Event())
        task = asyncio.create_task(
            self._run(verification_id), name=f"verification:{verification_id}"
        )
        self._tasks[verification_id] = task
        task.add_done_callback(lambda _: self._finished(verification_id))

    def _finished(self, verification_id: str) -> None:
        self._tasks.pop(verification_id, None)
        event = self._done.pop(verification_id, None)
        if event is not None:
            event.set()

    async def wait(self, verification_id: str, timeout_s: float) -> None:
        """Return when the verification finished or `timeout_s` passed, whichever is first."""
        event = self._done.get(verification_id)
        try:
            async with asyncio.timeout(timeout_s):
                if event is not None:
                    await event.wait()
                    return
                # Not running here (another process, or already done): watch the database.
                while not await self._is_finished(verification_id):  # noqa: ASYNC110 - no event crosses processes
                    await asyncio.sleep(self.poll_interval_s)
        except TimeoutError:
            return

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

    async def _run(self, verification_id: str) -> None:
        try:
            await self._verify(verification_id)
        except asyncio.CancelledError:
            raise  # shutting down: the run resumes from its stored sources on next start
        except Exception as exc:
            log.exception("verification_failed", verification_id=verification_id)
            await self._mark_failed(verification_id, f"internal error ({type(exc).__name__})")

    async def _verify(self, verification_id: str) -> None:
        async with self.session_factory() as session:
            verification = await VerificationRepository.from_session(session).get(verification_id)
            if verification is None or verification.status in FINISHED:
                return
            verification.status = VerificationStatus.running.value
            verification.started_at = verification.started_at or self.clock()
            await session.commit()
            household = HouseholdQuery(
                region_code=verification.region_code,
                as_of=verification.as_of,
                members=tuple(
                    MemberQuery(id_number=member.id_number, name=member.name)
                    for member in verification.members
                ),
            )
            pending = [row.source for row in verification.sources if row.status == "pending"]

        async with asyncio.TaskGroup() as group:
            for source in pending:
                group.create_task(self._fetch_and_store(verification_id, source, household))

        await self._complete(verification_id)

    async def _fetch_and_store(
        self, verification_id: str, source: str, household: HouseholdQuery
    ) -> None:
        outcome = await self.fanout.fetch(source, household)
        await self._store(verification_id, outcome)
        log.info(
            "source_settled",
            verification_id=verification_id,
            source=source,
            status=outcome.status.value,
            duration_ms=outcome.duration_ms,
            attempts=outcome.attempts,
        )

    async def _store(self, verification_id: str, outcome: SourceOutcome) -> None:
        async with self.session_factory() as session:
            row = await VerificationRepository.from_session(session).source_result(
                verification_id, outcome.source
            )
            if row is None:
                row = SourceResult(verification_id=verification_id, source=outcome.source)
                session.add(row)
            row.status = outcome.status.value
            row.records = [record.model_dump(mode="json") for record in outcome.records]
            row.detail = outcome.detail
            row.attempts = outcome.attempts
            row.started_at = outcome.started_at
            row.fetched_at = outcome.fetched_at
            row.duration_ms = outcome.duration_ms
            await session.commit()

    async def _complete(self, verification_id: str) -> None:
        async with self.session_factory() as session:
            verification = await VerificationRepository.from_session(session).get(verification_id)
            if verification is None:
                return
            policy = self.catalog.resolve(
                verification.region_code,
                verification.program,
                verification.area,
                verification.as_of,
            )
            if policy is None:
                # Checked at intake; only a policy file removed since then gets here.
                verification.status = VerificationStatus.failed.value
                verification.error = "no policy in force for this verification any more"
                verification.completed_at = self.clock()
                await session.commit()
                return
            report = build_report(verification, policy, generated_at=self.clock())
            await session.merge(to_row(report, policy))
            verification.status = VerificationStatus.completed.value
            verification.recommendation = report.recommendation
            verification.completed_at = self.clock()
            await session.commit()

    async def _mark_failed(self, verification_id: str, error: str) -> None:
        async with self.session_factory() as session:
            verification = await session.get(Verification, verification_id)
            if verification is None:
                return
            verification.status = VerificationStatus.failed.value
            verification.error = error
            verification.completed_at = self.clock()
            await session.commit()
