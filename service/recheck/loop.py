"""The periodic re-check pass of a process that runs verifications (serve, worker)."""

from collections.abc import Callable
from datetime import date

import structlog

from service.db import is_database_unavailable
from service.jobs.periodic import Periodic
from service.recheck.scheduler import RecheckScheduler

log = structlog.get_logger(__name__)


def _report(error: BaseException) -> None:
    # Called while the failure is handled: the traceback is the pass's. The database away
    # for a while is expected (the next pass sees the same work again).
    if not is_database_unavailable(error):
        log.exception("recheck_pass_failed")


class RecheckLoop:
    """A re-check pass at start, then every `interval_s` (0: never), until `close`."""

    def __init__(
        self, scheduler: RecheckScheduler, today: Callable[[], date], *, interval_s: float
    ) -> None:
        self.scheduler = scheduler
        self.today = today
        self._periodic = Periodic(
            "rechecks:schedule",
            interval_s,
            self.run_once,
            on_error=_report,
            immediately=True,
        )

    async def run_once(self) -> None:
        await self.scheduler.run_due(self.today())

    def start(self) -> None:
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.close()
