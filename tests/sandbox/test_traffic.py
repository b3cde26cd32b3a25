"""What each agency saw of its callers: calls, most at once, most within one second."""

import asyncio

import httpx


async def test_traffic_counts_calls_at_once_and_within_a_second(client: httpx.AsyncClient) -> None:
    await client.put("/faults/pensions", json={"mode": "ok", "latency_ms": 200})

    await asyncio.gather(*(client.get("/pensions/health") for _ in range(3)))
    await client.get("/vehicles/health")
    seen = (await client.get("/traffic")).json()

    assert seen["pensions"] == {"calls": 3, "max_in_flight": 3, "max_per_second": 3}
    assert seen["vehicles"] == {"calls": 1, "max_in_flight": 1, "max_per_second": 1}
    assert seen["bank"] == {"calls": 0, "max_in_flight": 0, "max_per_second": 0}


async def test_calls_in_turn_are_one_at_a_time_and_reset_starts_afresh(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        await client.get("/bank/health")
    in_turn = (await client.get("/traffic")).json()["bank"]
    reset = (await client.delete("/traffic")).json()["bank"]

    assert in_turn == {"calls": 3, "max_in_flight": 1, "max_per_second": 3}
    assert reset == {"calls": 0, "max_in_flight": 0, "max_per_second": 0}
