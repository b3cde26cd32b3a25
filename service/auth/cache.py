"""What each API process knows of the keys calling it, for a few seconds at most.

Every `/v1` request names its key; reading the key from the database each time would cost
a query per request, refusals included (a flood of 401s or 429s would then be a flood of
queries). `PrincipalCache` keeps what it read of a token (the principal, or why it is
refused: unknown, revoked, expired) for `ttl_s` seconds (HEDUI_PRINCIPAL_CACHE_S, 5 by
default), so:
- a key revoked in the database, by any process, is refused everywhere within `ttl_s`
  (at once in the process that revoked it, which forgets it);
- a key is refused at its expiry to the second: the expiry is kept and checked per request;
- concurrent requests of one token whose entry is stale share one read;
- at most `max_entries` tokens are remembered (the oldest read is forgotten first), so
  random tokens cannot grow memory.

A key's last use is noted at most once a minute per key and process, in the background and
by a conditional statement (no write if any process noted one within the minute), never as
a write per request.
"""

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Principal
from service.auth.repository import ApiKeyRepository
from service.auth.service import Lookup, expired, hash_token, principal_of, refusal_of
from service.db import WriteGate
from service.models.base import utcnow

log = structlog.get_logger(__name__)

LAST_USED_EVERY = timedelta(minutes=1)
MAX_ENTRIES = 10_000


@dataclass(slots=True)
class _Entry:
    principal: Principal | None
    refusal: str | None
    expires_at: datetime | None
    read_at: float


class PrincipalCache:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        ttl_s: float,
        write_gate: WriteGate | None = None,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.ttl_s = ttl_s
        self.write_gate = write_gate
        self.max_entries = max_entries
        self.clock = clock
        self.now = now
        self.reads = 0
        """Database reads of keys so far (for tests and benchmarks)."""
        self._entries: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Task[_Entry]] = {}
        self._noted: dict[str, float] = {}
        self._touches: set[asyncio.Task[None]] = set()
        self._generation = 0
        """Bumped by `forget`: a read that began before it is not remembered."""

    async def lookup(self, token: str) -> Lookup:
        """Who holds `token` (or why it is refused), read at most `ttl_s` seconds ago."""
        token_hash = hash_token(token)
        entry = self._entries.get(token_hash)
        if entry is None or self.clock() - entry.read_at >= self.ttl_s:
            entry = await self._read_once(token_hash)
        if entry.principal is None:
            return Lookup(None, entry.refusal)
        now = self.now()
        if entry.expires_at is not None and entry.expires_at <= now:
            return Lookup(None, expired(entry.expires_at))
        self._note_use(entry.principal.key_id, now)
        return Lookup(entry.principal)

    def forget(self, key_id: str) -> None:
        """Drop what this process knows of a key (it was just revoked here)."""
        self._generation += 1
        stale = [
            token_hash
            for token_hash, entry in self._entries.items()
            if entry.principal is not None and entry.principal.key_id == key_id
        ]
        for token_hash in stale:
            del self._entries[token_hash]

    async def aclose(self) -> None:
        """Let the notes of use under way finish (before the engine closes)."""
        if self._touches:
            await asyncio.gather(*self._touches, return_exceptions=True)

    async def _read_once(self, token_hash: str) -> _Entry:
        """One read of a token however many requests want it now; the read runs on its
        own, so a caller that goes away does not fail the others."""
        task = self._loading.get(token_hash)
        if task is None:
            task = asyncio.create_task(self._read(token_hash))
            self._loading[token_hash] = task
            generation = self._generation
            task.add_done_callback(lambda done: self._loaded(token_hash, done, generation))
        return await asyncio.shield(task)

    def _loaded(self, token_hash: str, task: "asyncio.Task[_Entry]", generation: int) -> None:
        if self._loading.get(token_hash) is task:
            del self._loading[token_hash]
        if task.cancelled() or task.exception() is not None:
            return  # the callers that waited got the error; nobody else will ask
        if self.ttl_s > 0 and generation == self._generation:
            self._remember(token_hash, task.result())

    async def _read(self, token_hash: str) -> _Entry:
        read_at = self.clock()
        async with self.session_factory() as session:
            key = await ApiKeyRepository.from_session(session).by_token_hash(token_hash)
        self.reads += 1
        now = self.now()
        refusal = refusal_of(key, now)
        if key is None or refusal is not None:
            return _Entry(None, refusal, None, read_at)
        if key.last_used_at is not None:
            # Another process (or an earlier life of this one) noted a use lately.
            since = (now - key.last_used_at).total_seconds()
            noted = self._noted.get(key.id, -math.inf)
            self._noted[key.id] = max(noted, read_at - max(since, 0.0))
        return _Entry(principal_of(key), None, key.expires_at, read_at)

    def _remember(self, token_hash: str, entry: _Entry) -> None:
        self._entries.pop(token_hash, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest read
        self._entries[token_hash] = entry

    def _note_use(self, key_id: str, now: datetime) -> None:
        at = self.clock()
        if at - self._noted.get(key_id, -math.inf) < LAST_USED_EVERY.total_seconds():
            return
        if len(self._noted) >= self.max_entries:
            horizon = at - LAST_USED_EVERY.total_seconds()
            self._noted = {k: t for k, t in self._noted.items() if t > horizon}
        self._noted[key_id] = at
        task = asyncio.create_task(self._touch(key_id, now))
        self._touches.add(task)
        task.add_done_callback(self._touches.discard)

    async def _touch(self, key_id: str, now: datetime) -> None:
        try:
            if self.write_gate is None:
                await self._write_touch(key_id, now)
            else:
                async with self.write_gate:
                    await self._write_touch(key_id, now)
        except (SQLAlchemyError, OSError) as error:
            # A last-use note is worth no failed request; the next minute tries again.
            log.warning("api_key_last_use_not_noted", key_id=key_id, error=type(error).__name__)

    async def _write_touch(self, key_id: str, now: datetime) -> None:
        async with self.session_factory() as session:
            await ApiKeyRepository.from_session(session).touch(
                key_id, at=now, every=LAST_USED_EVERY
            )
            await session.commit()
