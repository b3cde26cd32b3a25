"""Engine and session factories, and migrations applied from code."""

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy import event, exc, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential, wait_random

from connectors.retrying import retried_after_first
from service import sqlite_driver
from service.crypto.kek import Kek
from service.crypto.keyring import Keyring
from service.crypto.sealed import SESSION_KEYRING

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = "hedui_migrations"
"""The installed name of the top-level `alembic/` directory (see setup.py)."""
MIGRATION_LOCK = 0x6865647569  # "hedui": PostgreSQL advisory lock taken while migrating
SCHEMA_HEAD = "0036"
"""The newest migration's revision, the schema this version of hedui is written for: a
command that finds the database there checks nothing more and needs none of alembic
(about 120 ms of a command's start). `tests/integration/test_migrations.py` holds it to
alembic's own head, so a new migration cannot forget it."""

log = structlog.get_logger(__name__)
T = TypeVar("T")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Every engine of hedui (API, CLI, migrations) comes from here.

    `hide_parameters`: a statement's parameters are names, ID numbers, incomes and
    balances, so they never appear in an exception's text, hence never in a traceback
    that reaches a log.
    """
    if url.startswith("sqlite"):
        # One writer at a time is SQLite's nature; WAL lets readers proceed and the busy
        # timeout makes concurrent source writers wait instead of failing.
        # SQLite connections are cheap: a pool large enough for every waiting request and run.
        engine = create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            # Statements run in the event loop's thread; SQLite never sleeps in its busy
            # handler there (a busy statement is awaited: sqlite_driver.BUSY_WAIT_S).
            connect_args={"timeout": 0, "check_same_thread": False},
            module=sqlite_driver.dbapi(),
            pool_size=20,
            max_overflow=80,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        # Kept open: as many as a busy process uses at once (16 verifications in flight
        # and their runs). With 10 kept and 20 more made on demand, every burst above 10
        # opened connections and closed them again on return (about one per 8 households
        # at 16 concurrent: a TLS attempt, authentication, type introspection and every
        # statement prepared anew, 1.5-4 ms of CPU per household). At most 30 either way.
        pool_size=20,
        max_overflow=10,
    )
    # An executemany INSERT (a verification's members and source rows, a batch's chunk)
    # as one multi-row statement, as SQLAlchemy does with RETURNING: asyncpg would bind
    # and execute each row on its own, each a statement for the server.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    # A connection is pinged before use only when it has sat idle in the pool for a while
    # (a server restart is likeliest to have broken it then); one handed back a moment ago
    # is used at once. SQLAlchemy's `pool_pre_ping` would ping at every checkout: three
    # round trips (BEGIN, the ping, ROLLBACK) before each transaction, about 5 % of the CPU
    # of a verification on PostgreSQL. A connection broken all the same fails its
    # statement as unavailable, and the callers retry (`retry_while_unavailable`).
    event.listen(engine.sync_engine.pool, "checkin", _stamp_checkin)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


PING_AFTER_IDLE_S = 1.0
"""A pooled connection idle longer than this is pinged before it is used again."""


def _stamp_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    checked_in_at = record.info.get("checked_in_at")
    if checked_in_at is None or time.monotonic() - checked_in_at <= PING_AFTER_IDLE_S:
        return  # new, or used a moment ago
    try:
        dbapi_connection.ping()
    except Exception as error:
        # The pool drops this connection and checks out another (a fresh one, when the
        # server has restarted).
        raise exc.DisconnectionError() from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Freed pages are zeroed: a rewritten or deleted value (a rotation's old ciphertext, a
    # row sealed by the migration) leaves no copy in the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


class WriteGate:
    """Serialises this process's write transactions on SQLite (runs and new verifications).

    SQLite admits one writer; a second one waits in SQLite's busy handler, which sleeps in
    steps of 1 to 100 ms. Six sources settling at once would pay those sleeps on the hot
    path, so background writers queue here instead, which costs nothing. PostgreSQL takes
    concurrent writers as they come, so there the gate is open.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    async def __aenter__(self) -> None:
        if self._lock is not None:
            await self._lock.acquire()

    async def __aexit__(self, *_: object) -> None:
        if self._lock is not None:
            self._lock.release()


def create_session_factory(
    engine: AsyncEngine, keyring: Keyring | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions that seal and open sensitive columns with `keyring` (without one, a
    sealed column raises when touched)."""
    info = {} if keyring is None else {SESSION_KEYRING: keyring}
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)


def migrations_dir() -> Path:
    """Where the installed migrations are: in the wheel, or the source tree's alembic/."""
    spec = importlib.util.find_spec(MIGRATIONS)
    for location in (spec and spec.submodule_search_locations) or ():
        if (Path(location) / "env.py").is_file():
            return Path(location)
    raise RuntimeError(
        f"hedui's migrations ({MIGRATIONS}) are not installed; reinstall hedui "
        "(pip install . or its wheel)"
    )


def alembic_config() -> "AlembicConfig":
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


async def migrate(engine: AsyncEngine, revision: str = "head", *, kek: Kek | None = None) -> None:
    """Bring the schema to `revision`, on the caller's event loop. `kek` seals the rows of
    a database that predates encryption at rest (default: found as `hedui serve` would)."""

    from alembic import command

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        config.attributes["kek"] = kek
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes starting at once migrate one after the other; the later
            # ones find the schema current and do nothing.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        await connection.run_sync(upgrade)


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this version of hedui was written for."""


def _missing_sqlite_file(engine: AsyncEngine) -> str | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database.startswith(":memory:"):
        return None
    return None if Path(database).exists() else database


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this version of hedui."""

    where: str
    """The database, its password hidden."""
    revisions: frozenset[str]
    """The revisions the database is at (none: no hedui schema yet)."""
    heads: frozenset[str]
    """The revisions this version of hedui was written for."""
    known: frozenset[str]
    """Every revision this version of hedui has a migration for."""

    @property
    def current(self) -> bool:
        return self.revisions == self.heads

    def problem(self) -> str | None:
        """What is wrong, and what to do about it; None when the schema is current."""
        if self.current:
            return None
        if not self.revisions:
            return (
                f"the database {self.where} has no hedui schema yet: run `hedui db upgrade` "
                "(or `hedui serve`, which migrates) first"
            )
        at = ", ".join(sorted(self.revisions))
        heads = ", ".join(sorted(self.heads))
        if self.revisions - self.known:
            return (
                f"the database {self.where} is at schema revision {at}, newer than this "
                f"hedui knows ({heads}): upgrade hedui"
            )
        return (
            f"the database {self.where} is at schema revision {at}, behind this hedui's "
            f"{heads}: run `hedui db upgrade` first"
        )


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """The database's schema revisions against this version's (`SchemaNotCurrent` when
    `engine` is a SQLite file that does not exist: connecting would create it)."""
    missing = _missing_sqlite_file(engine)
    if missing is not None:
        # Connecting would create an empty file, which a later `hedui serve` would then use.
        raise SchemaNotCurrent(
            f"there is no database at {missing}: run this where `hedui serve` runs, set "
            "HEDUI_DATABASE_URL, or create it with `hedui db upgrade`"
        )

    where = engine.url.render_as_string(hide_password=True)
    async with engine.connect() as connection:
        revisions = await connection.run_sync(_revisions_stored)
    if revisions == {SCHEMA_HEAD}:
        head = frozenset(revisions)
        return SchemaState(where=where, revisions=head, heads=head, known=head)
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return SchemaState(
        where=where,
        revisions=frozenset(revisions),
        heads=frozenset(script.get_heads()),
        known=frozenset(revision.revision for revision in script.walk_revisions()),
    )


def _revisions_stored(connection: Connection) -> set[str]:
    """The revisions alembic recorded in the database (none without its table)."""
    if not inspect(connection).has_table("alembic_version"):
        return set()
    rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
    return {str(version) for (version,) in rows}


async def require_current_schema(engine: AsyncEngine) -> None:
    """Refuse a database whose schema is not at this version's head (commands that only
    read or write rows never migrate; `hedui serve` and `hedui db upgrade` do)."""
    problem = (await schema_state(engine)).problem()
    if problem is not None:
        raise SchemaNotCurrent(problem)


# character_not_in_repertoire (a NUL character in text), untranslatable_character (a
# `\u0000` escape in JSON): PostgreSQL refuses the value, SQLite would have stored it.
_TEXT_REFUSED = frozenset({"22021", "22P05"})


async def autovacuum_off(engine: AsyncEngine) -> bool:
    """Whether PostgreSQL's autovacuum is off on `engine`'s server (never on SQLite, which
    has none). The job queue's table gains a dead row per job: without autovacuum it only
    grows, and its statistics go stale (every dequeue then sorts the whole backlog)."""
    if engine.dialect.name != "postgresql":
        return False
    async with engine.connect() as connection:
        setting = (await connection.execute(text("SHOW autovacuum"))).scalar_one()
    return str(setting).lower() not in ("on", "true", "1")


def is_text_refused(error: BaseException) -> bool:
    """Whether PostgreSQL refused a text value it cannot store: the caller's input, which
    request models refuse first; this is the net under a field they do not cover."""
    return isinstance(error, exc.DBAPIError) and (
        getattr(error.orig, "sqlstate", None) in _TEXT_REFUSED
    )


def is_database_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot serve this transaction right now (restart,
    outage, exhausted pool, or a transaction the server rolled back for a conflict: a
    deadlock or a serialization failure), as opposed to a bug or a refused statement:
    worth retrying later. Nothing of a rolled-back transaction was kept, so repeating it
    whole is what PostgreSQL's documentation asks of a client."""
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        ):
            return True
        cause = error.orig.__cause__ if error.orig is not None else None
        return (
            _is_connection_error(error.orig) or _is_connection_error(cause) or _is_conflict(cause)
        )
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return True
    return _is_connection_error(error)


def _is_conflict(error: BaseException | None) -> bool:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    # SQLSTATE class 40: deadlock_detected (40P01), serialization_failure (40001), ...
    return isinstance(error, asyncpg.TransactionRollbackError)


def _is_connection_error(error: BaseException | None) -> bool:
    if isinstance(error, OSError | ConnectionError):
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(
        error,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.AdminShutdownError,
    )


async def retry_while_unavailable(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    initial_s: float = 0.1,
    max_s: float = 5.0,
) -> T:
    """Run `operation` (one whole transaction) until it gets through the database.

    Only "database unavailable" errors are retried, with exponential backoff and jitter
    capped at `max_s`, for as long as it takes: a run must outlive a database restart.
    Anything else is raised at once. The operation must be safe to repeat. The first
    attempt costs no retry machinery (a run stores its answers through here twice).
    """
    return await retried_after_first(
        operation,
        retryable=is_database_unavailable,
        retrying=lambda: AsyncRetrying(
            retry=retry_if_exception(is_database_unavailable),
            wait=wait_exponential(multiplier=initial_s, max=max_s) + wait_random(0, initial_s),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "database_unavailable",
                operation=what,
                attempt=state.attempt_number,
                error_type=type(state.outcome.exception()).__name__ if state.outcome else None,
            ),
        ),
    )


async def commit_begun(session: AsyncSession) -> None:
    """Commit what `session` has begun; nothing when it has begun nothing (a request that
    only read from the cache, or whose work another session did): an empty commit still
    costs a greenlet and the session's bookkeeping, three times per verification."""
    if session.in_transaction():
        await session.commit()


async def each_statement_commits(session: AsyncSession) -> None:
    """From here to `session`'s next commit, each statement commits by itself. On
    PostgreSQL that saves the round trips of BEGIN and COMMIT (the connection is in
    autocommit for that transaction; it is reset when it goes back to the pool). Only for
    statements that need no atomicity together; call it before the transaction has begun
    (otherwise, and on SQLite, which has no round trips to save, nothing changes)."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A request's unit of work: commit on success, roll back on any error."""
    async with factory() as session:
        try:
            yield session
            await commit_begun(session)
        except BaseException:
            await session.rollback()
            raise
