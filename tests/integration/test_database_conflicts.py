"""A transaction the database rolls back for a conflict (here a real deadlock on
PostgreSQL) is repeated whole by `retry_while_unavailable`, as the server asks, and in the
API it is a 503 to retry, never a 500."""

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import is_database_unavailable, retry_while_unavailable


async def test_a_deadlocked_transaction_is_retried_and_both_complete(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: it cannot deadlock")
    table = f"deadlock_{uuid.uuid4().hex[:8]}"  # this test's own: suites may share the server
    bump = text(f"UPDATE {table} SET n = n + 1 WHERE id = :id")  # noqa: S608 - our own name
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)"))
        await connection.execute(text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))  # noqa: S608
    both_hold_their_first = asyncio.Barrier(2)
    attempts = {"a": 0, "b": 0}
    errors: list[BaseException] = []

    async def transfer(name: str, first: int, second: int) -> None:
        attempts[name] += 1
        async with engine.begin() as connection:
            await connection.execute(bump, {"id": first})
            if attempts[name] == 1:  # only the first attempts meet; a retry runs alone
                await both_hold_their_first.wait()
            try:
                await connection.execute(bump, {"id": second})
            except Exception as error:
                errors.append(error)
                raise

    try:
        await asyncio.gather(
            retry_while_unavailable(lambda: transfer("a", 1, 2), what="a", initial_s=0.01),
            retry_while_unavailable(lambda: transfer("b", 2, 1), what="b", initial_s=0.01),
        )
        async with engine.connect() as connection:
            total = text(f"SELECT sum(n) FROM {table}")  # noqa: S608 - our own name
            totals = (await connection.execute(total)).scalar()
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP TABLE {table}"))

    assert len(errors) == 1  # PostgreSQL chose one victim
    assert is_database_unavailable(errors[0])
    assert sorted(attempts.values()) == [1, 2]
    assert totals == 4  # each transaction's two updates, once
