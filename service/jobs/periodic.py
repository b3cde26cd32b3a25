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
    `{name}_failed` with the error's type, and the next round runs as planned; `on_error`,
    when given, handles such a failure instead (to log it its own way, or not at all).
    `immediately`: the first round runs at `start`, not one interval later.
    """

    def __init__(
        self,
        name: str,
        interval_s: float,
        work: Callable[[], Awaitable[Any]],
        *,
        errors: tuple[type[BaseException], ...] = (Exception,),
        on_error: Callable[[BaseException], None] | None = None,
        immediately: bool = False,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.work = work
        self.errors = errors
        self.on_error = on_error
        self.immediately = immediately
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """From now on (once; an interval of 0 never starts)."""
        if self._task is None and self.interval_s > 0:
            self._task = asyncio.create_task(self._forever(), name=self.name)

    async def _forever(self) -> None:
        if not self.immediately:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.work()
            except self.errors as error:
                if self.on_error is not None:
                    self.on_error(error)
                else:
                    log.warning(f"{self.name}_failed", error_type=type(error).__name__)
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
