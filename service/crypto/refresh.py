"""Each process polls the data keys, so that a key added by `hedui keys rotate` elsewhere
is known here (to open values sealed with it) and becomes the one new values use."""

import asyncio
import contextlib

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from service.crypto.kek import Kek
from service.crypto.keyring import Keyring
from service.crypto.store import refresh_keyring

log = structlog.get_logger(__name__)


class KeyRefresher:
    def __init__(self, engine: AsyncEngine, kek: Kek, keyring: Keyring, interval_s: float) -> None:
        self.engine = engine
        self.kek = kek
        self.keyring = keyring
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="key-refresh")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await refresh_keyring(self.engine, self.kek, self.keyring)
            except Exception as error:  # the database may be away for a moment
                log.warning("key_refresh_failed", error_type=type(error).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
