"""The queue depth load shedding reads: one count, cached for a second, one query however
many ask at once; a database that fails keeps the last figure."""

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.jobs.depth import QueueDepth
from service.verification.repository import VerificationRepository


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_crowd_of_readers_makes_one_count_per_second(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    depth = QueueDepth(session_factory, clock=clock)
    async with session_factory() as session:
        expected = await VerificationRepository.from_session(session).count_queued()

    figures = await asyncio.gather(*(depth.read() for _ in range(50)))

    assert set(figures) == {expected}
    assert depth.reads == 1
    clock.now += 0.5
    assert await depth.read() == expected
    assert depth.reads == 1  # still fresh
    clock.now += 0.6
    # Stale: the last figure at once, and one count in the background for the next caller.
    stale = await asyncio.gather(*(depth.read() for _ in range(50)))
    assert set(stale) == {expected}
    assert depth._reading is not None
    await depth._reading
    assert depth.reads == 2


async def test_a_failed_read_keeps_the_last_figure(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    depth = QueueDepth(session_factory, clock=clock)
    first = await depth.read()
    assert first is not None

    def broken() -> AsyncSession:
        raise ConnectionError("database away")

    depth.session_factory = broken  # type: ignore[assignment]
    clock.now += 2
    assert await depth.read() == first
    assert depth._reading is not None
    await depth._reading
    assert depth.reads == 2
    assert await depth.read() == first
