"""The write gate: serialises writers on SQLite, stays open on PostgreSQL."""

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import WriteGate
from service.models import ApiKey


@pytest.mark.postgres_only
async def test_postgresql_commits_a_second_writer_while_the_first_is_open(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The premise of the open gate: PostgreSQL needs no serialising of write transactions.

    On SQLite the inner `async with gate` would wait for the outer one forever, and the
    second commit would wait for the first writer's lock: it only passes on PostgreSQL.
    """
    gate = WriteGate(engine)
    async with asyncio.timeout(10):  # a guard against a deadlock, not a speed check
        async with session_factory() as first, session_factory() as second, gate:
            held, _ = await create_api_key(first, role=Role.auditor, region="5301")
            async with gate:
                committed, _ = await create_api_key(second, role=Role.auditor, region="5302")
                await second.commit()
            await first.rollback()
    async with session_factory() as session:
        ids = set(
            await session.scalars(select(ApiKey.id).where(ApiKey.id.in_([held.id, committed.id])))
        )
    assert ids == {committed.id}


async def test_sqlite_writers_take_turns(engine: AsyncEngine) -> None:
    """On SQLite a second writer waits at the gate until the first has left it."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the gate is open on PostgreSQL: see the test above")
    gate = WriteGate(engine)
    order: list[str] = []
    async with gate:
        second = asyncio.create_task(_enter(gate, order))
        await asyncio.sleep(0)
        order.append("first leaves")
    await second
    assert order == ["first leaves", "second enters"]


async def _enter(gate: WriteGate, order: list[str]) -> None:
    async with gate:
        order.append("second enters")
