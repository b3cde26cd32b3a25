"""What every repository is: the queries of one domain noun, over the caller's session.

A repository runs statements and never commits: the unit of work that opened the session
(a request, a job) does (see `service.db.session_scope`)."""

import zlib
from typing import Any, Self

from sqlalchemy import false, inspect, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


class Repository:
    """The base of every `<Noun>Repository`: built with `from_session(session)`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)

    def _insert(self, target: Any) -> postgresql.Insert | sqlite.Insert:
        """An INSERT into `target` (a model or a table) in the session's dialect, which can
        say what a row already there does to it (`on_conflict_do_nothing`, `..._update`)."""
        if self.session.get_bind().dialect.name == "postgresql":
            return postgresql.insert(target)
        return sqlite.insert(target)

    async def _one_at_a_time(self, lock: int, key: str, model: type[DeclarativeBase]) -> None:
        """Until this transaction ends, no other transaction gets past this point with the
        same `lock` and `key`: a count and the insert it allows (a limit) are one step.

        On PostgreSQL a transaction-scoped advisory lock on `lock` and a hash of `key`,
        which only transactions asking for the same wait on. On SQLite the database's one
        write lock, taken by an UPDATE of `model`'s table that changes no row: a
        transaction that has only read holds none, and two of them would both count what
        neither has inserted yet."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:lock, :key)"),
                {"lock": lock, "key": zlib.crc32(key.encode()) - 2**31},
            )
        else:
            key_column = inspect(model).primary_key[0]
            await self.session.execute(
                update(model).where(false()).values({key_column.name: key_column})
            )
