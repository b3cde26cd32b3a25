"""Each process polls the data keys, so that a key added by `hedui keys rotate` elsewhere
is known here (to open values sealed with it) and becomes the one new values use."""

from sqlalchemy.ext.asyncio import AsyncEngine

from service.crypto.kek import Kek
from service.crypto.keyring import Keyring
from service.crypto.store import refresh_keyring
from service.jobs.periodic import Periodic


class KeyRefresher:
    def __init__(self, engine: AsyncEngine, kek: Kek, keyring: Keyring, interval_s: float) -> None:
        self.engine = engine
        self.kek = kek
        self.keyring = keyring
        self.interval_s = interval_s
        # The database may be away for a moment: a failed round is logged, the next one runs.
        self._periodic = Periodic("key_refresh", interval_s, self.refresh)

    async def refresh(self) -> None:
        await refresh_keyring(self.engine, self.kek, self.keyring)

    def start(self) -> None:
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.close()
