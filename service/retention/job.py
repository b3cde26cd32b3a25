"""Scheduling of the purge: every `HEDUI_RETENTION_INTERVAL_S` in API and worker processes
(on PostgreSQL, SKIP LOCKED keeps two processes from taking the same verifications)."""

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import session_scope
from service.jobs.periodic import Periodic
from service.retention.service import cutoff_for, retention

log = structlog.get_logger(__name__)


async def purge_all(
    session_factory: async_sessionmaker[AsyncSession], days: int, *, batch: int = 500
) -> int:
    """Purge everything due now, one committed batch at a time."""
    cutoff = cutoff_for(days)
    total = 0
    while True:
        async for session in session_scope(session_factory):
            purged = await retention.purge_batch(session, cutoff, limit=batch)
        total += purged
        if purged < batch:
            return total


class RetentionJob:
    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, days: int, interval_s: float
    ) -> None:
        self.session_factory = session_factory
        self.days = days
        self._periodic = Periodic(
            "retention_round", interval_s, self.run_once, errors=(SQLAlchemyError, OSError)
        )

    async def run_once(self) -> int:
        purged = await purge_all(self.session_factory, self.days)
        if purged:
            log.info("retention_purged", verifications=purged, older_than_days=self.days)
        return purged

    def start(self) -> None:
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.close()
