"""How long a large partner answer holds up the event loop: parsed inline or in a thread.

A loopback server answers the vehicles connector with a valid body of the given size; a
ticker coroutine measures the longest stretch the event loop could not run while the
connector fetched and parsed it. Run: `python -m bench.partner_answers [--repeat N]`.
"""

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import date

from aiohttp import web

from connectors import http as connector_http
from connectors.base import ConnectorConfig, fetch_evidence
from connectors.vehicles import VehiclesConnector
from schemas.evidence import HouseholdQuery, MemberQuery, RequestContext
from service.config import Settings
from service.http import create_http_client

MEMBER = "11010519491231002X"
VEHICLE = '<Vehicle plate="云A12345" type="K33" registeredOn="2019-05-01" value="85000.00"/>'
SIZES = (16 * 1024, 256 * 1024, 1024 * 1024 - 1024, 2 * 1024 * 1024, 4 * 1024 * 1024)


def vehicles_body(size: int) -> bytes:
    head = f'<VehicleQueryResult code="0"><Person idNumber="{MEMBER}">'
    tail = "</Person></VehicleQueryResult>"
    count = (size - len(head.encode()) - len(tail.encode())) // len(VEHICLE.encode())
    return (head + VEHICLE * count + tail).encode()


async def longest_stall(work: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """(longest event-loop stall in ms, wall time of `work` in ms, what `work` returned)."""
    stalls: list[float] = []
    done = False

    async def tick() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls.append(now - last - 0.001)
            last = now

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    value = await work()
    wall = time.perf_counter() - started
    done = True
    await ticker
    return max(stalls, default=0.0) * 1000, wall * 1000, value


async def main(repeat: int) -> None:
    bodies = {size: vehicles_body(size) for size in SIZES}
    current: list[bytes] = [b""]

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=current[0], content_type="application/xml")

    app = web.Application()
    app.router.add_post("/vehicles/query", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    connector = VehiclesConnector()
    config = ConnectorConfig(  # limits raised: the larger sizes show why the defaults are where
        base_url=f"http://127.0.0.1:{port}/vehicles",  # they are
        max_response_bytes=max(SIZES),
        max_records=10**6,
    )
    household = HouseholdQuery(
        region_code="530102",
        as_of=date(2026, 11, 20),
        members=(MemberQuery(id_number=MEMBER),),
        context=RequestContext(consent_id="AUTH-BENCH", purpose="dibao"),
    )
    client = create_http_client(Settings())
    default_threshold = connector_http.INLINE_PARSE_BYTES

    async def work() -> int:
        evidence = await fetch_evidence(connector, household, config, client)
        return len(evidence.records)

    print(f"vehicles answers, best of {repeat}: longest event-loop stall / fetch wall time")
    print(
        f"{'body':>9} {'records':>8} {'inline stall':>13} {'thread stall':>13} "
        f"{'inline wall':>12} {'thread wall':>12}"
    )
    try:
        for size, body in bodies.items():
            current[0] = body
            row: dict[str, tuple[float, float]] = {}
            records = 0
            for mode, threshold in (("inline", 10**12), ("thread", default_threshold)):
                connector_http.INLINE_PARSE_BYTES = threshold
                runs = [await longest_stall(work) for _ in range(repeat)]
                records = runs[0][2]
                row[mode] = (min(r[0] for r in runs), statistics.median(r[1] for r in runs))
            print(
                f"{size / 1024:>7.0f}KB {records:>8} {row['inline'][0]:>11.1f}ms "
                f"{row['thread'][0]:>11.1f}ms {row['inline'][1]:>10.1f}ms "
                f"{row['thread'][1]:>10.1f}ms"
            )
    finally:
        connector_http.INLINE_PARSE_BYTES = default_threshold
        await client.aclose()
        await runner.cleanup()
    print(f"bodies over {default_threshold // 1024} KB are parsed in a worker thread")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeat))
