"""The background scheduler of periodic jobs."""

import asyncio

from service.jobs.periodic import Periodic


async def test_runs_again_and_again_and_survives_a_failed_round() -> None:
    rounds: list[int] = []

    async def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise OSError("the database is away")

    periodic = Periodic("tick", 0.01, work, errors=(OSError,))
    periodic.start()
    periodic.start()  # a second start changes nothing
    for _ in range(200):
        if len(rounds) >= 4:
            break
        await asyncio.sleep(0.01)
    await periodic.close()

    assert len(rounds) >= 4
    done = len(rounds)
    await asyncio.sleep(0.05)
    assert len(rounds) == done  # closed: no more rounds


async def test_an_interval_of_zero_never_starts() -> None:
    async def work() -> None:
        raise AssertionError("must not run")

    periodic = Periodic("never", 0, work)
    periodic.start()
    await asyncio.sleep(0.02)
    await periodic.close()
