"""The periodic re-check pass of a process that runs verifications (serve, worker)."""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import date

import structlog

from service.db import is_database_unavailable
from service.recheck.scheduler import RecheckScheduler

log = structlog.get_logger(__name__)


class RecheckLoop:
    def __init__(
        self, scheduler: RecheckScheduler, today: Callable[[], date], *, interval_s: float
    ) -> None:
        self.scheduler = scheduler
        self.today = today
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._forever(), name="rechecks:schedule")

    async def _forever(self) -> None:
        while True:
            try:
                await self.scheduler.run_due(self.today())
            except Exception as error:
                if not is_database_unavailable(error):
                    log.exception("recheck_pass_failed")
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
