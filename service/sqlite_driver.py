"""SQLAlchemy's aiosqlite adapter, with one trip to SQLite's thread per statement.

aiosqlite runs each SQLite call in a thread of its connection; the event loop hands it the
call and is woken with the result. SQLAlchemy's adapter makes a statement three or four
such trips (open a cursor, execute, fetch the rows, close the cursor), and each trip costs
far more than SQLite's own work: a thread switch both ways and a wake-up of the loop
(about 150 µs of CPU, against a few µs for the statement itself). Here a statement is one
function run in that thread, which opens the cursor, executes, reads every row and closes
the cursor, and hands back the rows with the cursor's description, row count and last row
id. Results were read whole before too (only server-side cursors stream, and they keep
SQLAlchemy's own class), so nothing else changes: transactions, errors and their
translation, the pool. A commit or a rollback with no transaction open (the pool resets
every connection handed back; a read opens none) makes no trip at all, as sqlite3 would
do nothing there either.

`bench/sqlite_driver.py` measures it; `create_engine` uses it for every SQLite URL.
"""

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

Ran = tuple[Any, list[Any], int, int | None]
"""A statement's description, rows, row count and last row id."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Ran:
    """In SQLite's thread: the whole statement, its cursor closed before returning."""
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


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds a statement's results, with no SQLite cursor of its own."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No trip here: the SQLite cursor is made with the statement, in its thread.
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
        """Nothing to close: the SQLite cursor was closed in its thread."""

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            ran: Ran = await connection._execute(
                _run, connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = ran
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor

    def _in_transaction(self) -> bool:
        # Read from this thread: SQLite's autocommit flag, a plain read, while no call of
        # this connection is in its thread (SQLAlchemy awaits each one).
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        return connection._connection is not None and connection._conn.in_transaction

    def commit(self) -> None:
        # sqlite3 itself does nothing outside a transaction; this skips the trip too (a
        # read-only transaction never began one: the pool's reset after every checkout).
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (`create_engine(module=...)`)."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        creator_fn = kw.pop("async_creator_fn", None)
        if creator_fn:
            connection = creator_fn(*arg, **kw)
        else:
            connection = self.aiosqlite.connect(*arg, **kw)
            connection.daemon = True  # as SQLAlchemy's: never holds the process open
        return OneTripConnection(self, await_(connection))


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
