"""The PostgreSQL job queue keeps its table's statistics as batches fill it."""

import uuid
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import create_engine
from service.jobs.pgqueue import PgQueue
from service.models import Verification


async def _planned_rows(session: AsyncSession) -> float:
    """What the planner believes the queue table holds (-1: never analyzed)."""
    return float(
        (
            await session.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'pgqueuer'"))
        ).scalar_one()
    )


@pytest.mark.postgres_only
async def test_batches_analyze_the_queue_table_every_so_many_jobs(
    fresh_database_url: str,
) -> None:
    """Without it, the planner thinks a queue of 100,000 batch jobs empty until autovacuum
    comes by (never, where it is off), and every dequeue sorts the whole backlog."""
    engine = create_engine(fresh_database_url)
    # Only the enqueueing side is exercised: no workflow runs, no sweeper sweeps.
    queue = PgQueue(cast(Any, None), engine, cast(Any, None), analyze_every=100)
    seen = []
    try:
        async with AsyncSession(engine) as session:
            before = await _planned_rows(session)
            await session.commit()
            for _ in range(3):
                chunk = [Verification(id=str(uuid.uuid4())) for _ in range(50)]
                await queue.enqueue_many(session, chunk)
                await session.commit()
                seen.append(await _planned_rows(session))
                await session.commit()
            queued = (await session.execute(text("SELECT count(*) FROM pgqueuer"))).scalar_one()
    finally:
        await engine.dispose()
    assert queued == 150
    assert before <= 0
    # Analyzed once 100 jobs had come (all of them counted, the analyzing chunk's too),
    # not at 50, and not again at 150.
    assert seen == [before, 100, 100]
