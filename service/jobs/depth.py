"""How many verifications wait to be run: the queue depth load shedding reads.

One `COUNT` over the `(status, lease_expires_at)` index, of the verifications still
`queued` (stored, not yet claimed by any process): the same figure whichever queue runs
them (pgqueuer jobs on PostgreSQL, the rows themselves on SQLite). It is read at most once
per `ttl_s` per process, by one query however many requests ask at once. Once there is a
figure, nobody waits for the database: a caller gets the last figure at once, and a figure
older than `ttl_s` is read again in the background (a refusal under load must not queue
behind a count). Only the very first read is waited for. A failed read keeps the last
figure (or none): the database being away is answered elsewhere, not by shedding.
"""

import asyncio
import time
from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.verification.repository import VerificationRepository

log = structlog.get_logger(__name__)

TTL_S = 1.0


class QueueDepth:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_factory = session_factory
        self.ttl_s = ttl_s
        self.clock = clock
        self.last: int | None = None
        """The latest figure read, None before the first."""
        self.reads = 0
        """Queries made so far (the cache's effect is visible in tests)."""
        self._read_at = -float("inf")
        self._reading: asyncio.Task[int | None] | None = None

    async def read(self) -> int | None:
        """Verifications waiting to run: the last figure (read again in the background
        when older than `ttl_s`), or, before there is one, the first; None when unread."""
        if self.clock() - self._read_at < self.ttl_s:
            return self.last
        if self._reading is None:
            self._reading = asyncio.create_task(self._count(), name="queue-depth")
            self._reading.add_done_callback(self._done)
        if self.last is not None:
            return self.last
        # Shielded: a caller that goes away does not cancel the read the others wait for.
        return await asyncio.shield(self._reading)

    async def _count(self) -> int | None:
        try:
            async with self.session_factory() as session:
                depth = await VerificationRepository.from_session(session).count_queued()
        except Exception as error:  # the database may be away; keep the last figure
            log.warning("queue_depth_unread", error_type=type(error).__name__)
            return self.last
        finally:
            self.reads += 1
            self._read_at = self.clock()
        self.last = depth
        return depth

    def _done(self, _: "asyncio.Task[int | None]") -> None:
        self._reading = None
