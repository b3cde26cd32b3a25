"""What the command line's groups share: how a command fails, and sessions on a database
whose schema is current (the commands never migrate; `hedui db upgrade` and `serve` do)."""

import asyncio
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from service.config import Settings
    from service.runtime import Runtime

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
    """Run a command's async body. A database that is not migrated, or whose data keys the
    key file cannot open, is a `fatal` line with `status`; a policy file of
    HEDUI_POLICY_DIR that does not validate, or an installed connector plugin that breaks
    the contract, is one line too, with status 2 (both are read where the body builds its
    runtime)."""
    import uvloop

    # uvloop, as `hedui serve` runs on (uvicorn's choice): a worker's partner calls and
    # statements on the standard library's loop spent a quarter of its CPU in the loop
    # itself (`bench/RESULTS.md`).
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(work)
    except Exception as error:
        if _raised(error, "service.db", "SchemaNotCurrent") or _raised(
            error, "service.crypto.keyring", "KeyringError"
        ):
            fatal(str(error), status)
        if _raised(error, "service.policy.files", "PolicyFileError"):
            # A deployment's own policy file (HEDUI_POLICY_DIR) that does not validate: the
            # file and the field, as the policy docs promise, not a traceback.
            fatal(f"policy file {error}", 2)
        if _raised(error, "connectors.registry", "ConnectorRegistrationError"):
            # An installed plugin that breaks the connector contract: its entry point and
            # why, as docs/connectors.md promises, not a traceback through the loading.
            fatal(str(error), 2)
        raise


def _raised(error: Exception, module: str, name: str) -> bool:
    """Whether `error` is `module.name`'s kind. A module the command never imported cannot
    have raised it, so nothing is imported to ask (the connectors' registry alone is a
    tenth of a command's start)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(error, getattr(loaded, name))


def settings(**overrides: Any) -> "Settings":
    """The settings, with the options a command was given (None: not given)."""
    from service.config import Settings

    return Settings(**{key: value for key, value in overrides.items() if value is not None})


@asynccontextmanager
async def runtime(migrate_to: str | None = None) -> AsyncIterator["Runtime"]:
    """A command's runtime; only `db upgrade` passes `migrate_to`, the others never
    migrate."""
    from service.runtime import build_runtime

    async with build_runtime(settings(), migrate_to=migrate_to) as built:
        yield built
