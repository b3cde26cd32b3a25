"""Key rotation: a new data key seals new values, and every stored value is re-sealed
with it, in batches, while the service keeps serving.

1. `adding`: the new key is stored (wrapped) but not used yet; we wait `grace_s` so that
   every process (each polls the data keys every `HEDUI_KEY_REFRESH_S`) knows it before
   any value is sealed with it.
2. `rewriting`: the new key is made primary (new writes use it once each process has
   polled again; we wait `grace_s` once more), then each table's rows not yet under the
   new key are re-sealed, a batch per transaction, in primary-key order. Each update only
   applies if the row still holds what was read (a concurrent write wins: it is sealed
   with the new key already). Progress (table, last row) is stored after every batch, so
   an interrupted rotation resumes where it stopped (`hedui keys rotate` again).
3. A last sweep over every table re-seals whatever was written meanwhile with the old key
   by a process that had not yet switched; the rotation is `done` when none is left.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.crypto.kek import Kek
from service.crypto.keyring import FORMAT, Keyring, KeyringError
from service.crypto.rotation_repository import RotationRepository, primary_key_of, table_of
from service.crypto.sealed import Sealed, row_key_of, sealed_fields
from service.crypto.store import DATA, KeyRepository, next_kid, refresh_keyring
from service.models import (
    ChangeWarning,
    Decision,
    KeyRotation,
    Member,
    NearRelative,
    Recipient,
    Report,
    SourceResult,
    Webhook,
)

log = structlog.get_logger(__name__)

ADDING = "adding"
REWRITING = "rewriting"
DONE = "done"
SEALED_MODELS: tuple[type, ...] = (
    Member,
    SourceResult,
    Report,
    NearRelative,
    Webhook,
    ChangeWarning,
    Recipient,
    Decision,
)
"""Every model with sealed columns, in the order a rotation re-seals them (new ones go at
the end: a rotation under way stores its place as an index into this tuple)."""

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class RotationStatus:
    target_kid: str
    state: str
    rewritten: int
    remaining: int


async def remaining(session: AsyncSession, kid: str) -> int:
    """How many rows still hold a value sealed with another key than `kid`."""
    return await RotationRepository.from_session(session).stale_count(SEALED_MODELS, kid)


async def _batch(
    session: AsyncSession, keyring: Keyring, model: type, kid: str, after: Any, size: int
) -> tuple[int, Any]:
    """Re-seal up to `size` stale rows of `model` after primary key `after`; the number
    re-sealed and the last primary key seen (None: nothing left after `after`)."""
    repository = RotationRepository.from_session(session)
    rows = await repository.stale_rows(model, kid, after, size)
    if not rows:
        return 0, None
    table = table_of(model)
    key = primary_key_of(model)
    fields: list[Sealed[Any]] = sealed_fields(model)
    row_columns = [table.c[name] for name in model.SEALED_ROW]  # type: ignore[attr-defined]
    name = str(model.__tablename__)  # type: ignore[attr-defined]
    done = 0
    for row in rows:
        mapping = row._mapping
        identity = row_key_of(model, {col.name: mapping[col] for col in row_columns})
        old = {field.column: mapping[table.c[field.column]] for field in fields}
        new = {}
        for field in fields:
            token = old[field.column]
            fresh = token is None or token.startswith(f"{FORMAT}:{kid}:")
            new[field.column] = (
                token
                if fresh
                else keyring.reseal(token, table=name, column=field.name, row=identity)
            )
        done += await repository.reseal(model, mapping[key], old, new)
    return done, rows[-1]._mapping[key]


class Rotation:
    """Runs (or resumes) the rotation of this database's data key."""

    def __init__(
        self,
        engine: AsyncEngine,
        kek: Kek,
        keyring: Keyring,
        *,
        grace_s: float,
        batch_size: int = 500,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.engine = engine
        self.kek = kek
        self.keyring = keyring
        self.grace_s = grace_s
        self.batch_size = batch_size
        self.sleep = sleep
        self.factory = async_sessionmaker(engine, expire_on_commit=False)

    async def current(self) -> KeyRotation | None:
        async with self.factory() as session:
            return await RotationRepository.from_session(session).unfinished(DONE)

    async def begin(self) -> KeyRotation:
        """The unfinished rotation, or a new one with a new data key (not yet primary)."""
        unfinished = await self.current()
        if unfinished is not None:
            return unfinished
        async with self.factory() as session:
            repository = KeyRepository.from_session(session)
            kid = next_kid(await repository.all())
            await repository.add(self.kek, kid, DATA, "active")
            rotation = KeyRotation(
                target_kid=kid,
                state=ADDING,
                step=0,
                after=None,
                rewritten=0,
                started_at=_now(),
                updated_at=_now(),
            )
            await RotationRepository.from_session(session).add(rotation)
            await session.commit()
        log.info("key_rotation_started", target_kid=kid)
        return rotation

    async def _save(self, kid: str, **values: Any) -> None:
        async with self.factory() as session:
            await RotationRepository.from_session(session).save(
                kid, {"updated_at": _now(), **values}
            )
            await session.commit()

    async def run(self, progress: Progress | None = None) -> RotationStatus:
        """Carry the rotation through to the end; `progress(n)` after each batch."""
        rotation = await self.begin()
        kid = rotation.target_kid
        if rotation.state == ADDING:
            await refresh_keyring(self.engine, self.kek, self.keyring)
            await self.sleep(self.grace_s)  # every process learns the key
            async with self.factory() as session:
                await KeyRepository.from_session(session).make_primary(kid)
                await session.commit()
            await self._save(kid, state=REWRITING, step=0, after=None)
            await refresh_keyring(self.engine, self.kek, self.keyring)
            await self.sleep(self.grace_s)  # every process seals with it
            rotation.state, rotation.step, rotation.after = REWRITING, 0, None
        await refresh_keyring(self.engine, self.kek, self.keyring)
        if self.keyring.primary != kid:
            raise KeyringError(f"data key {kid} should be primary by now; run the rotation again")
        rewritten = rotation.rewritten
        step, after = rotation.step, rotation.after
        while True:
            while step < len(SEALED_MODELS):
                model = SEALED_MODELS[step]
                cursor = _decode_after(model, after)
                async with self.factory() as session:
                    done, last = await _batch(
                        session, self.keyring, model, kid, cursor, self.batch_size
                    )
                    await session.commit()
                rewritten += done
                if last is None:
                    step, after = step + 1, None
                else:
                    after = str(last)
                await self._save(kid, step=step, after=after, rewritten=rewritten)
                if progress is not None and done:
                    progress(done)
            async with self.factory() as session:
                left = await remaining(session, kid)
            if left == 0:
                break
            step, after = 0, None  # written meanwhile under the old key: sweep again
        await self._save(kid, state=DONE, finished_at=_now(), rewritten=rewritten)
        log.info("key_rotation_done", target_kid=kid, rewritten=rewritten)
        return RotationStatus(kid, DONE, rewritten, 0)

    async def status(self) -> RotationStatus | None:
        async with self.factory() as session:
            latest = await RotationRepository.from_session(session).latest()
            if latest is None:
                return None
            left = await remaining(session, latest.target_kid)
        return RotationStatus(latest.target_kid, latest.state, latest.rewritten, left)


def _decode_after(model: type, after: str | None) -> Any:
    if after is None:
        return None
    key = primary_key_of(model)
    return int(after) if key.type.python_type is int else after


def _now() -> datetime:
    return datetime.now(UTC)
