"""Scheduling of the purge: every `HEDUI_RETENTION_INTERVAL_S` in API and worker processes
(on PostgreSQL, SKIP LOCKED keeps two processes from taking the same verifications)."""

import asyncio
import contextlib

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import session_scope
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
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.interval_s > 0:
            self._task = asyncio.create_task(self._forever(), name="retention")

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                purged = await purge_all(self.session_factory, self.days)
            except (SQLAlchemyError, OSError) as error:
                log.warning("retention_round_failed", error=type(error).__name__)
                continue
            if purged:
                log.info("retention_purged", verifications=purged, older_than_days=self.days)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
