"""Data keys in the database, wrapped by the KEK: load them into a keyring, create the
first ones, add a new primary (rotation)."""

import base64
import os
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import exc, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from service.crypto.kek import Kek
from service.crypto.keyring import NONCE_BYTES, DataKey, Keyring, KeyringError, new_key
from service.models.data_key import DataKey as StoredKey
from service.repository import Repository

DATA = "data"
INDEX = "index"
PRIMARY = "primary"
ACTIVE = "active"
INDEX_KID = "i1"


def _wrap_ad(kid: str, purpose: str) -> bytes:
    return b"\x00".join((b"hedui", b"data-key", kid.encode(), purpose.encode()))


def wrap(kek: Kek, kid: str, purpose: str, secret: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(kek.secret).encrypt(nonce, secret, _wrap_ad(kid, purpose))
    return base64.b64encode(nonce + sealed).decode()


def unwrap(kek: Kek, row: StoredKey) -> bytes:
    if row.kek_id != kek.kek_id:
        raise KeyringError(
            f"data key {row.kid} was wrapped by another key-encryption key than {kek.origin}: "
            "this is not the key file (or HEDUI_KEK) of this database"
        )
    raw = base64.b64decode(row.wrapped)
    try:
        return AESGCM(kek.secret).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _wrap_ad(row.kid, row.purpose)
        )
    except InvalidTag:
        raise KeyringError(f"data key {row.kid} does not unwrap: it was altered") from None


class KeyRepository(Repository):
    async def all(self) -> list[StoredKey]:
        return list(await self.session.scalars(select(StoredKey).order_by(StoredKey.created_at)))

    async def add(self, kek: Kek, kid: str, purpose: str, state: str) -> None:
        self.session.add(
            StoredKey(
                kid=kid,
                purpose=purpose,
                state=state,
                wrapped=wrap(kek, kid, purpose, new_key()),
                kek_id=kek.kek_id,
                created_at=datetime.now(UTC),
            )
        )
        await self.session.flush()

    async def make_primary(self, kid: str) -> None:
        await self.session.execute(
            update(StoredKey)
            .where(StoredKey.purpose == DATA, StoredKey.kid != kid)
            .values(state=ACTIVE)
        )
        await self.session.execute(
            update(StoredKey).where(StoredKey.kid == kid).values(state=PRIMARY)
        )


def keys_from_rows(kek: Kek, rows: list[StoredKey]) -> tuple[list[DataKey], str, bytes]:
    data = [DataKey(row.kid, unwrap(kek, row)) for row in rows if row.purpose == DATA]
    primaries = [row.kid for row in rows if row.purpose == DATA and row.state == PRIMARY]
    index = [unwrap(kek, row) for row in rows if row.purpose == INDEX]
    if not data or not index or len(primaries) != 1:
        raise KeyringError("the database's data keys are incomplete")
    return data, primaries[0], index[0]


def next_kid(rows: list[StoredKey]) -> str:
    numbers = [int(row.kid[1:]) for row in rows if row.purpose == DATA and row.kid[1:].isdigit()]
    return f"k{max(numbers, default=0) + 1}"


async def open_keyring(engine: AsyncEngine, kek: Kek) -> Keyring:
    """The database's keyring, unwrapped with `kek`; on a database without keys, the first
    data key and the blind-index key are created (once, whoever of several starting
    processes gets there first)."""
    factory = async_sessionmaker(engine, expire_on_commit=False)
    for _ in range(3):
        async with factory() as session:
            rows = await KeyRepository.from_session(session).all()
            if rows:
                return Keyring(*keys_from_rows(kek, rows))
            repository = KeyRepository.from_session(session)
            try:
                await repository.add(kek, "k1", DATA, PRIMARY)
                await repository.add(kek, INDEX_KID, INDEX, ACTIVE)
                await session.commit()
            except exc.IntegrityError:  # another process created them first
                await session.rollback()
    raise KeyringError("could not create or load the data keys")


async def refresh_keyring(engine: AsyncEngine, kek: Kek, keyring: Keyring) -> None:
    """Learn the keys created since (a rotation) and which one is primary now."""
    factory = async_sessionmaker(engine, expire_on_commit=False)
    async with factory() as session:
        rows = await KeyRepository.from_session(session).all()
    data, primary, _ = keys_from_rows(kek, rows)
    keyring.update(data, primary)
