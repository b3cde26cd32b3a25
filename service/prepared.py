"""Statements built once, sent as prepared text with their parameters by position.

SQLAlchemy executes a Core statement through its compiled cache: every execution looks the
statement up, builds its parameters by name, applies each type's bind processor and sets up
the result's processing. For a run's settle of six sources, a hundred parameters, that is
about 100 µs of CPU on SQLite (`bench/store.py`). A statement built once (at module level,
or per shape with `lru_cache`) is compiled here once per dialect; each execution hands the
driver its text and a tuple, as `service.bulk` does for the intake's INSERTs
(`Connection.exec_driver_sql`: errors, their translation and `hide_parameters` stay
SQLAlchemy's).

For statements whose text does not depend on their parameters: no expanding parameter (an
`in_` of a list given at execution; `in_` of literal values is one too: bind them one by
one). Result rows come as the driver returns them, unprocessed (SQLite's 0 or 1 for a
boolean): for counts, keys and flags read for their truth; `rows_prepared` passes each
value through its column type's result processor, as `session.execute` would (SQLite's
dates are text until then).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, CursorResult, Executable, Row
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler


class _Prepared(NamedTuple):
    sql: str
    parameters: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]
    """Per position: the parameter's name, its type's bind processor, its bound value
    (a literal's; otherwise None)."""


async def execute_prepared(
    session: AsyncSession, statement: Executable, parameters: Mapping[str, Any]
) -> CursorResult[*tuple[Any, ...]]:
    """Execute `statement` (built once) in `session`'s transaction with `parameters` by
    name, as `session.execute` would (its rows buffered the same way)."""
    # One greenlet for the connection and the statement: `session.connection()` and then
    # `AsyncConnection.exec_driver_sql` would each take one, more than the text saves.
    return await session.run_sync(_execute, statement, parameters)


async def execute_prepared_many(
    session: AsyncSession, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Execute `statement` (built once, returning nothing) once for each of `rows` (its
    parameters by name) in one call to the driver (`executemany`); the number of rows it
    changed in all."""
    return await session.run_sync(_execute_many, statement, rows)


async def rows_prepared(
    session: AsyncSession, statement: Executable, parameters: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """All the rows of `statement` (built once; a SELECT, or a statement RETURNING rows),
    executed as `execute_prepared` does, each value as its column's type reads it."""
    return await session.run_sync(_rows, statement, parameters)


def _rows(
    session: Session, statement: Executable, parameters: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    connection = session.connection()
    rows: list[Row[Any]] = list(_execute_on(connection, statement, parameters))
    processors = _result_processors(connection.dialect, statement)
    if not any(processors):
        return [tuple(row) for row in rows]
    return [
        tuple(
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


@functools.lru_cache(maxsize=64)
def _result_processors(
    dialect: Dialect, statement: Executable
) -> tuple[Callable[[Any], Any] | None, ...]:
    columns = statement.exported_columns  # type: ignore[attr-defined]
    return tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )


def _execute(
    session: Session, statement: Executable, parameters: Mapping[str, Any]
) -> CursorResult[*tuple[Any, ...]]:
    return _execute_on(session.connection(), statement, parameters)


def _execute_many(
    session: Session, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> int:
    connection = session.connection()
    prepared = _prepare(connection.dialect, statement)
    result = connection.exec_driver_sql(prepared.sql, [_values(prepared, row) for row in rows])
    return int(result.rowcount)


def _execute_on(
    connection: Connection, statement: Executable, parameters: Mapping[str, Any]
) -> CursorResult[*tuple[Any, ...]]:
    prepared = _prepare(connection.dialect, statement)
    return connection.exec_driver_sql(prepared.sql, _values(prepared, parameters))


def _values(prepared: _Prepared, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
    """`parameters` by position, each through its type's bind processor."""
    values = []
    for name, process, bound in prepared.parameters:
        value = parameters.get(name, bound)
        values.append(value if process is None or value is None else process(value))
    return tuple(values)


@functools.lru_cache(maxsize=256)
def _prepare(dialect: Dialect, statement: Executable) -> _Prepared:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        raise ValueError(f"{dialect.name}: no positional parameters to prepare with")
    binds = compiled.binds
    if any(bind.expanding for bind in binds.values()):
        raise ValueError("a statement with an expanding parameter changes with its values")
    return _Prepared(
        compiled.string,
        tuple(
            (
                name,
                binds[name].type.bind_processor(dialect),
                binds[name].value if binds[name].callable is None else None,
            )
            for name in compiled.positiontup
        ),
    )
