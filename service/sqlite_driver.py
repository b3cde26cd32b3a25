"""SQLAlchemy's aiosqlite adapter, with statements run in the event loop's own thread.

aiosqlite runs each SQLite call in a thread of its connection; the event loop hands it the
call and is woken with the result. That trip costs far more than SQLite's own work: a
thread switch both ways and a wake-up of the loop, about 150 µs of CPU, against a few µs
for a one-row UPDATE and its commit (SQLite writes the WAL to the page cache; with
`synchronous=NORMAL` nothing waits for the disk but a checkpoint). SQLAlchemy's adapter
makes three or four such trips per statement. Here a statement, a commit and a rollback
run where SQLAlchemy calls them, in the loop's thread: the cursor is opened, executed, read
whole and closed in one call, and the rows are handed back with its description, row count
and last row id. A commit or a rollback with no transaction open costs nothing, as sqlite3
would do nothing there either. The aiosqlite connection and its thread remain for what is
rare and may be slow: connecting, closing, server-side cursors.

Two things the thread used to absorb are handled here instead:
- **Another writer.** SQLite's busy handler would sleep in the loop's thread, and could
  wait for a transaction of this very process that cannot end while the loop sleeps. The
  connections have no busy timeout (`timeout=0`); a statement SQLite refuses as busy is
  tried again after an `asyncio.sleep` of 1 ms, doubling up to 50 ms, for `BUSY_WAIT_S`.
- **Long work.** A statement holds the loop while it runs. Most of hedui's are indexed
  one-row or one-page reads and writes (tens of µs); a batch's chunk of inserts or a
  retention purge of 500 verifications takes longer, and so does the occasional WAL
  checkpoint at a commit (up to 7-9 ms seen; `bench/sqlite_driver.py` prints the longest).
  Serving many callers at once is PostgreSQL's part (README, Scaling out).

Transactions, errors and their translation and the pool are SQLAlchemy's.
`bench/sqlite_driver.py` measures it; `create_engine` uses it for every SQLite URL.
"""

import asyncio
import collections
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")
Ran = tuple[Any, list[Any], int, int | None]
"""A statement's description, rows, row count and last row id."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Ran:
    """The whole statement, its cursor closed before returning."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class LoopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds a statement's results, with no SQLite cursor of its own."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No trip here: the SQLite cursor is made with the statement.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows: collections.deque[Any] = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # as sqlite3's, None before any insert

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the SQLite cursor was closed with its statement."""

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._statement(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._statement(operation, seq_of_parameters, many=True)

    async def _statement(self, operation: Any, parameters: Any, *, many: bool) -> None:
        # A coroutine, though it runs at once: SQLAlchemy's asyncio layer insists on an
        # await per statement (one greenlet switch: a microsecond or two).
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            ran: Ran = await _when_free(_run, connection._conn, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = ran
        self._rows = collections.deque(rows)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLite refused for now: another connection holds the write lock (or is recovering
    the WAL). Not SQLITE_BUSY_SNAPSHOT: a read transaction that must start over."""
    busy = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY_RECOVERY)
    return getattr(error, "sqlite_errorcode", None) in busy


BUSY_WAIT_S = 30.0
"""How long a statement waits for another connection's write transaction to end."""


def _now_or_later(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in this thread (the event loop's), at once; when SQLite is busy,
    waited for without blocking the loop (from SQLAlchemy's greenlet)."""
    try:
        return function(*args)
    except sqlite3.OperationalError as error:
        if not _is_busy(error):
            raise
    return await_(_when_free(function, *args))


async def _when_free(function: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_WAIT_S
    delay = 0.001
    while True:
        try:
            return function(*args)
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or loop.time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class LoopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = LoopCursor

    def _in_transaction(self) -> bool:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        return connection._connection is not None and connection._conn.in_transaction

    def commit(self) -> None:
        # sqlite3 itself does nothing outside a transaction (a read-only transaction never
        # began one: the pool's reset after every checkout).
        if self._in_transaction():
            self._end(self._connection._conn.commit)

    def rollback(self) -> None:
        if self._in_transaction():
            self._end(self._connection._conn.rollback)

    def _end(self, end: Callable[[], None]) -> None:
        try:
            _now_or_later(end)
        except Exception as error:
            self._handle_exception(error)


class LoopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (`create_engine(module=...)`)."""

    def connect(self, *arg: Any, **kw: Any) -> LoopConnection:
        creator_fn = kw.pop("async_creator_fn", None)
        if creator_fn:
            connection = creator_fn(*arg, **kw)
        else:
            connection = self.aiosqlite.connect(*arg, **kw)
            # As SQLAlchemy's: the connection's thread never holds the process open.
            connection._thread.daemon = True
        return LoopConnection(self, await_(connection))


def dbapi() -> LoopDBAPI:
    return LoopDBAPI(aiosqlite, sqlite3)
