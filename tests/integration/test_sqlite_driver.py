"""hedui's SQLite adapter: statements, commits and rollbacks run in the event loop's thread
(no trip to aiosqlite's), a busy database is waited for without blocking the loop, and
everything SQLAlchemy reads of a cursor (rows, row counts, inserted ids, errors) is what
SQLite said. On a real database file."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, exc, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import sqlite_driver
from service.db import create_engine
from service.sqlite_driver import LoopConnection

metadata = MetaData()
people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite connection's thread."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return sent


async def test_hedui_engines_use_the_loop_adapter(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.dbapi_connection, LoopConnection)


async def test_statements_commits_and_rollbacks_make_no_trip_to_sqlites_thread(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as connection:  # a connection from the pool, checked out
        await connection.execute(text("SELECT 1"))
        await connection.commit()
    trips.clear()
    async with engine.begin() as connection:
        await connection.execute(insert(people).values(name="a"))
        await connection.execute(insert(people).values(name="b"))
    async with engine.connect() as connection:
        await connection.execute(insert(people).values(name="c"))
        await connection.rollback()
        rows = (await connection.execute(select(people.c.name).order_by(people.c.id))).all()
    assert trips == []
    assert [name for (name,) in rows] == ["a", "b"]


async def test_a_busy_database_is_waited_for_while_the_loop_runs_on(engine: AsyncEngine) -> None:
    """Another connection holds the write lock: the second writer waits (the loop serves
    everything else meanwhile) and writes once the first has committed."""
    ticks = 0
    holding = await engine.connect()
    await holding.execute(insert(people).values(name="first"))  # the write lock, held

    async def second() -> None:
        async with engine.begin() as connection:
            await connection.execute(insert(people).values(name="second"))

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    waiting = asyncio.create_task(second())
    await asyncio.sleep(0.2)
    assert not waiting.done()  # still refused: the first transaction is open
    assert ticks >= 10  # the loop was never held by the waiting writer
    await holding.commit()
    await holding.close()
    await asyncio.wait_for(waiting, 5)
    ticker.cancel()
    async with engine.connect() as connection:
        names = (await connection.execute(select(people.c.name).order_by(people.c.id))).all()
    assert [name for (name,) in names] == ["first", "second"]


async def test_a_writer_that_never_ends_fails_the_waiting_one_after_the_busy_wait(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "BUSY_WAIT_S", 0.1)
    holding = await engine.connect()
    await holding.execute(insert(people).values(name="first"))
    try:
        with pytest.raises(exc.OperationalError, match="database is locked"):
            async with engine.begin() as connection:
                await connection.execute(insert(people).values(name="second"))
    finally:
        await holding.rollback()
        await holding.close()


async def test_rows_counts_and_inserted_ids_are_what_sqlite_said(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        first = await connection.execute(insert(people).values(name="a"))
        assert first.inserted_primary_key == (1,)
        returned = await connection.execute(
            insert(people).values(name="b").returning(people.c.id, people.c.name)
        )
        assert returned.all() == [(2, "b")]
        many = await connection.execute(insert(people), [{"name": "c"}, {"name": "d"}])
        assert many.rowcount == 2
        updated = await connection.execute(
            people.update().where(people.c.id > 1).values(name=people.c.name + "!")
        )
        assert updated.rowcount == 3
        names = (await connection.execute(select(people.c.name).order_by(people.c.id))).all()
    assert [name for (name,) in names] == ["a", "b!", "c!", "d!"]


async def test_an_error_is_sqlalchemys_and_the_transaction_rolls_back(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(people).values(name="a"))
        with pytest.raises(exc.IntegrityError):
            await connection.execute(insert(people).values(name="a"))
        await connection.rollback()
    async with engine.connect() as connection:
        count = await connection.scalar(select(people.c.id).limit(1))
    assert count is None  # the first insert went with the failed transaction


async def test_a_streamed_result_still_reads_row_by_row(engine: AsyncEngine) -> None:
    """Server-side cursors keep SQLAlchemy's own class: they fetch as they are read."""
    async with engine.begin() as connection:
        await connection.execute(insert(people), [{"name": str(n)} for n in range(50)])
    async with engine.connect() as connection:
        result = await connection.stream(select(people.c.id).order_by(people.c.id))
        seen = [row.id async for row in result]
    assert seen == list(range(1, 51))
