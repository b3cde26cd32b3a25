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


async def test_the_first_round_waits_one_interval_unless_immediately() -> None:
    started: dict[str, int] = {"later": 0, "now": 0}

    def counting(key: str) -> Periodic:
        async def work() -> None:
            started[key] += 1

        return Periodic(key, 60, work, immediately=key == "now")

    later, now = counting("later"), counting("now")
    later.start()
    now.start()
    await asyncio.sleep(0.02)
    await later.close()
    await now.close()

    assert started == {"later": 0, "now": 1}


async def test_on_error_handles_a_failed_round_and_the_rounds_go_on() -> None:
    seen: list[str] = []
    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        raise OSError(f"round {rounds}")

    periodic = Periodic("tick", 0.01, work, on_error=lambda e: seen.append(str(e)))
    periodic.start()
    for _ in range(200):
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.01)
    await periodic.close()

    assert seen[:2] == ["round 1", "round 2"]
