"""Learning that a verification ended, whichever process ran it (`Prefer: wait`).

A waiting request holds no database connection. It learns of the end from, first come
first served:
- this process's own runs (`finished`, which also hands over the run's result, so the
  answer needs no read back);
- PostgreSQL `LISTEN` on the channel the workflow notifies when its transaction commits;
- a short poll: one query for every verification waited on in this process, only while
  somebody waits (the way across processes on SQLite, and a safety net on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.jobs.workflow import DONE_CHANNEL, RunResult
from service.verification.repository import VerificationRepository

log = structlog.get_logger(__name__)


class Ended:
    """A verification's end as seen by a waiter: `result` when this process ran it."""

    __slots__ = ("result",)

    def __init__(self, result: RunResult | None) -> None:
        self.result = result


class Completions:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        poll_interval_s: float = 0.02,
    ) -> None:
        self.session_factory = session_factory
        self.poll_interval_s = poll_interval_s
        self.running_here: Callable[[str], bool] = lambda _: False
        """Whether this process runs the verification now: such a run reports its end
        itself, so polling for it would only cost the database and the event loop."""
        self._waiters: dict[str, list[asyncio.Future[Ended]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listen_on: AsyncEngine | None = None

    def finished(self, verification_id: str, result: RunResult | None = None) -> None:
        """Wake everyone waiting on this verification (a run of this process ended)."""
        for future in self._waiters.pop(verification_id, ()):
            if not future.done():
                future.set_result(Ended(result))

    async def wait(self, verification_id: str, timeout_s: float) -> Ended | None:
        """The verification's end, or None if it has not ended within `timeout_s`."""
        future: asyncio.Future[Ended] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(verification_id, []).append(future)
        if self._listen_on is not None and not self.running_here(verification_id):
            # The first wait on a run elsewhere opens the LISTEN connection; meanwhile (and
            # should it drop) the poll stands in.
            engine, self._listen_on = self._listen_on, None
            self._listener = asyncio.create_task(self._listen(engine), name="completions:listen")
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="completions:poll")
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(verification_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiters[verification_id]

    async def listen(self, engine: AsyncEngine) -> None:
        """On PostgreSQL, also listen for ends announced by other processes (from the first
        wait on a run that is not this process's own)."""
        if engine.dialect.name == "postgresql":
            self._listen_on = engine

    async def close(self) -> None:
        for task in (self._poller, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poll(self) -> None:
        # The first look is immediate: a replay may wait on a verification that has ended.
        while self._waiters:
            ids = [id_ for id_ in self._waiters if not self.running_here(id_)]
            if not ids:
                await asyncio.sleep(self.poll_interval_s)
                continue
            try:
                async with self.session_factory() as session:
                    ended = await VerificationRepository.from_session(session).waiting_ids(ids)
            except (
                Exception
            ) as error:  # the database is away: waiters time out or a later poll sees it
                log.warning("completion_poll_failed", error_type=type(error).__name__)
                ended = []
            for verification_id in ended:
                self.finished(verification_id)
            await asyncio.sleep(self.poll_interval_s)

    async def _listen(self, engine: AsyncEngine) -> None:
        """One dedicated connection for LISTEN; re-established whenever it drops."""
        import asyncpg

        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

        def notified(_: Any, __: Any, ___: Any, payload: object) -> None:
            if isinstance(payload, str):
                self.finished(payload)

        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(url)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(DONE_CHANNEL, notified)
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("completion_listener_down", error_type=type(error).__name__)
            finally:
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(1.0)
