"""Scheduling of batch completion: every `HEDUI_BATCH_SWEEP_S` in the processes that run
verifications, find the batches that have ended and complete them (the decision and the
`batch.completed` event are `BatchService.complete_ended`; this module only commits).

A sweep rather than a check at each verification's end: the last two verifications of a
batch may end in two transactions at once, each seeing the other still running; a sweep
after both have committed sees neither. Completing is a conditional update, so several
processes sweeping at once complete each batch once."""

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.batch.repository import BatchRepository
from service.batch.service import batch as batch_service
from service.db import WriteGate
from service.jobs.periodic import Periodic

log = structlog.get_logger(__name__)


class BatchCompletion:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        write_gate: WriteGate,
        *,
        interval_s: float,
    ) -> None:
        self.session_factory = session_factory
        self.write_gate = write_gate
        self._periodic = Periodic(
            "batch_completion", interval_s, self.run_once, errors=(SQLAlchemyError, OSError)
        )

    async def run_once(self) -> list[str]:
        """Complete what has ended; the batch ids completed by this call."""
        async with self.session_factory() as session:
            # A cheap look first, outside the write gate: usually nothing has ended.
            if not await BatchRepository.from_session(session).ended_uncompleted(limit=1):
                return []
        async with self.write_gate, self.session_factory() as session:
            completed = await batch_service.complete_ended(session)
            await session.commit()
        for batch_id in completed:
            log.info("batch_completed", batch_id=batch_id)
        return completed

    def start(self) -> None:
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.close()
