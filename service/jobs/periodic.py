"""Background work repeated every so often (chaining the audit trail, the retention purge,
picking up registered connectors): one small scheduler, so each job is only its work."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Periodic:
    """Run `work` every `interval_s` seconds in this process until `close`.

    A round that fails with one of `errors` (the database away for a moment) is logged as
    `{name}_failed` with the error's type, and the next round runs as planned.
    """

    def __init__(
        self,
        name: str,
        interval_s: float,
        work: Callable[[], Awaitable[Any]],
        *,
        errors: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.work = work
        self.errors = errors
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """From now on (once; an interval of 0 never starts)."""
        if self._task is None and self.interval_s > 0:
            self._task = asyncio.create_task(self._forever(), name=self.name)

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.work()
            except self.errors as error:
                log.warning(f"{self.name}_failed", error_type=type(error).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
