"""What the command line's groups share: how a command fails, and sessions on a database
whose schema is current (the commands never migrate; `hedui db upgrade` and `serve` do)."""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")


def fatal(message: str, status: int = 1) -> NoReturn:
    """One line on stderr, `hedui: …`, and the exit status."""
    Console(stderr=True).print(f"hedui: {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(status)


@asynccontextmanager
async def sessions(database_url: str) -> AsyncIterator["async_sessionmaker[AsyncSession]"]:
    """Sessions on `database_url`, once its schema is known to be current
    (`SchemaNotCurrent` otherwise); no keyring: for what is not sealed (keys, the audit
    trail)."""
    from service import db

    engine = db.create_engine(database_url)
    try:
        await db.require_current_schema(engine)
        yield db.create_session_factory(engine)
    finally:
        await engine.dispose()


def run(work: Coroutine[Any, Any, T], *, status: int = 1) -> T:
    """A command's async body; a database that is not migrated is a `fatal` line."""
    from service.db import SchemaNotCurrent

    try:
        return asyncio.run(work)
    except SchemaNotCurrent as error:
        fatal(str(error), status)
