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

    from connectors.registry import ConnectorRegistrationError
    from service.crypto.keyring import KeyringError
    from service.db import SchemaNotCurrent
    from service.policy.files import PolicyFileError

    # uvloop, as `hedui serve` runs on (uvicorn's choice): a worker's partner calls and
    # statements on the standard library's loop spent a quarter of its CPU in the loop
    # itself (`bench/RESULTS.md`).
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(work)
    except (SchemaNotCurrent, KeyringError) as error:
        fatal(str(error), status)
    except PolicyFileError as error:
        # A deployment's own policy file (HEDUI_POLICY_DIR) that does not validate: the
        # file and the field, as the policy docs promise, not a traceback.
        fatal(f"policy file {error}", 2)
    except ConnectorRegistrationError as error:
        # An installed plugin that breaks the connector contract: its entry point and
        # why, as docs/connectors.md promises, not a traceback through the loading.
        fatal(str(error), 2)


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
