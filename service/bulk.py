"""Rows for several tables inserted together, in as few round trips as the database allows.

A new verification is four tables' rows (the verification, its members, its planned
sources, the request's audit event) that commit together. Inserted one table at a time,
PostgreSQL costs a round trip for each INSERT and two more for BEGIN and COMMIT: six,
before the first partner is asked. Here, on PostgreSQL, they are one statement: each
table's rows go as one array per column (`unnest`), every table but the last in a
data-modifying CTE. One statement is atomic by itself, so a transaction that is only this
statement needs no BEGIN or COMMIT either (`commit=True`): one round trip in all. The
statement's text depends only on the tables and columns, so it is built once per shape and
prepared once per connection; and arrays keep it at one parameter per column, however many
rows (a batch's chunk of thousands included). Foreign keys hold as for separate statements:
PostgreSQL checks them at the end of the statement, when every CTE has inserted.

SQLite, which has no round trips to save, runs one executemany per table, in order, its
text too built once per shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import each_statement_commits


class Rows(NamedTuple):
    """Rows of one table, every row with the same columns."""

    table: Table
    rows: Sequence[Mapping[str, Any]]


async def insert_together(
    session: AsyncSession, parts: Sequence[Rows], *, commit: bool = False
) -> None:
    """Insert every part's rows, in order, in `session`'s transaction.

    `commit=True`: these rows are the whole transaction; it is committed here (on
    PostgreSQL the statement commits by itself when no transaction has begun: one round
    trip). On an error nothing is committed; the caller rolls the session back."""
    parts = [part for part in parts if part.rows]
    shape = tuple((part.table, _columns(part)) for part in parts)
    dialect = session.get_bind().dialect
    if not parts:
        if commit:
            await session.commit()
        return
    if dialect.name != "postgresql":
        connection = await session.connection()
        statements = _each_statements(dialect, shape)
        # Every table's statement in one trip into SQLAlchemy's sync layer (one greenlet),
        # not one per table.
        await connection.run_sync(_execute_each, statements, parts)
        if commit:
            await session.commit()
        return
    statement = _statement(dialect, shape)
    if commit:
        await each_statement_commits(session)
    connection = await session.connection()
    await connection.exec_driver_sql(statement.sql, statement.parameters(parts))
    if commit:
        await session.commit()


def _execute_each(
    connection: Connection, statements: Sequence[_Statement], parts: Sequence[Rows]
) -> None:
    for part, statement in zip(parts, statements, strict=True):
        connection.exec_driver_sql(statement.sql, statement.rows(part))


def _columns(part: Rows) -> tuple[str, ...]:
    """The part's columns; a programming error (ValueError) when its rows differ in their
    columns or name one the table does not have."""
    first = part.rows[0].keys()
    columns = tuple(first)
    if any(row.keys() != first for row in part.rows):
        raise ValueError(f"rows of {part.table.name} with different columns")
    unknown = set(columns) - _names(part.table)
    if unknown:
        raise ValueError(f"{part.table.name} has no column {sorted(unknown)[0]}")
    return columns


@functools.cache
def _names(table: Table) -> frozenset[str]:
    """A table's column names (its columns are fixed once the models are loaded)."""
    return frozenset(table.columns.keys())


class _Statement(NamedTuple):
    sql: str
    columns: tuple[tuple[tuple[str, Callable[[Any], Any] | None, Any], ...], ...]
    """Per part, per column of the statement: the row's key (or "" for a default), the
    type's bind processor, and the default's value or callable."""

    def rows(self, part: Rows) -> list[tuple[Any, ...]]:
        """The part's rows as the statement's positional parameters (one statement per
        part: `_each_statements`)."""
        (columns,) = self.columns
        rows: list[tuple[Any, ...]] = []
        for row in part.rows:
            values: list[Any] = []
            for key, process, default in columns:
                # Written out, without a function called per value (~150 values a verification).
                value = row[key] if key else (default() if callable(default) else default)
                values.append(value if process is None or value is None else process(value))
            rows.append(tuple(values))
        return rows

    def parameters(self, parts: Sequence[Rows]) -> tuple[list[Any], ...]:
        arrays: list[list[Any]] = []
        for part, columns in zip(parts, self.columns, strict=True):
            rows = part.rows
            for key, process, default in columns:
                if key:
                    values = [row[key] for row in rows]
                else:
                    values = [default() if callable(default) else default for _ in rows]
                arrays.append([process(value) for value in values] if process else values)
        return tuple(arrays)


@functools.lru_cache(maxsize=64)
def _each_statements(
    dialect: Dialect, shape: tuple[tuple[Table, tuple[str, ...]], ...]
) -> tuple[_Statement, ...]:
    """One INSERT per table, with a row's values as positional parameters (SQLite's
    `?`), compiled once per shape: SQLAlchemy's `insert(table)` with a list of dicts
    builds its cache key and every row's parameters anew for every verification."""
    quote = dialect.identifier_preparer.quote
    statements: list[_Statement] = []
    for table, given in shape:
        part = _column_values(dialect, table, given)
        names = ", ".join(quote(name) for name, _ in part)
        marks = ", ".join("?" for _ in part)
        # Names from hedui's own tables; every value is a bound parameter.
        sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608
        statements.append(_Statement(sql, (tuple(value for _, value in part),)))
    return tuple(statements)


def _column_values(
    dialect: Dialect, table: Table, given: tuple[str, ...]
) -> list[tuple[str, tuple[str, Callable[[Any], Any] | None, Any]]]:
    """The columns an INSERT of rows with the `given` columns names, in the table's order:
    each with the row's key (or "" for a default), the type's bind processor, and the
    Python-side default's value or callable (what SQLAlchemy's INSERT would have applied).
    Columns with neither are left to the database's default, or NULL."""
    part: list[tuple[str, tuple[str, Callable[[Any], Any] | None, Any]]] = []
    for column in table.columns:
        default = column.default
        if column.name in given:
            key, value = column.name, None
        elif default is not None and (default.is_scalar or default.is_callable):
            arg = default.arg  # type: ignore[attr-defined]
            key, value = "", (functools.partial(arg, None) if default.is_callable else arg)
        else:
            continue
        part.append((column.name, (key, column.type.bind_processor(dialect), value)))
    return part


@functools.lru_cache(maxsize=64)
def _statement(dialect: Dialect, shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> _Statement:
    quote = dialect.identifier_preparer.quote
    inserts: list[str] = []
    columns: list[tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]] = []
    number = 0
    for table, given in shape:
        names: list[str] = []
        casts: list[str] = []
        part: list[tuple[str, Callable[[Any], Any] | None, Any]] = []
        for name, value in _column_values(dialect, table, given):
            number += 1
            names.append(quote(name))
            casts.append(f"${number}::{table.c[name].type.compile(dialect=dialect)}[]")
            part.append(value)
        # Names and types from hedui's own tables; every value is a bound parameter.
        inserts.append(
            f"INSERT INTO {quote(table.name)} ({', '.join(names)}) "  # noqa: S608
            f"SELECT * FROM unnest({', '.join(casts)})"
        )
        columns.append(tuple(part))
    *first, last = inserts
    ctes = ", ".join(f"i{index} AS ({sql})" for index, sql in enumerate(first))
    sql = f"WITH {ctes} {last}" if ctes else last
    return _Statement(sql, tuple(columns))
