"""What a partner's throttle costs per call: the same pension queries through a bare
client, through the in-memory throttle (SQLite), and through the shared one (PostgreSQL:
two statements per call), all with limits too high to bind.

Starts `hedui sandbox` as its own process and needs a PostgreSQL server for the shared
throttle (a throw-away database is created and dropped). Run:
`python -m bench.throttle [--calls N] [--concurrency C] [--postgres URL]`.
"""

import argparse
import asyncio
import tempfile
import time
import uuid

import httpx

from bench._server import running_sandbox
from service.config import Settings
from service.connector.meter import CallMeter, Turns
from service.connector.throttle import Limits, LocalThrottle, SharedThrottle, Throttle
from service.db import create_engine, migrate
from service.http import create_http_client

EXAMPLE_ID_NUMBER = "11010519491231002X"
BODY = {"requests": [{"seq": 1, "sfzh": EXAMPLE_ID_NUMBER}]}


async def fire(
    client: httpx.AsyncClient, url: str, calls: int, concurrency: int, throttle: Throttle | None
) -> tuple[float, float]:
    """(milliseconds of wall time per call at this concurrency, client CPU ms per call)."""
    semaphore = asyncio.Semaphore(concurrency)
    limits = Limits(concurrency=1000, rate_per_s=None)

    async def one() -> None:
        async with semaphore:
            if throttle is None:
                response = await client.post(url, json=BODY)
            else:
                deadline = asyncio.get_running_loop().time() + 30
                meter = CallMeter(client, Turns(throttle, "pensions", limits, deadline))
                async with meter.client() as turned:
                    response = await turned.post(url, json=BODY)
            response.raise_for_status()

    await asyncio.gather(*(one() for _ in range(min(concurrency, calls))))  # warm up
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall * 1000 / calls, cpu * 1000 / calls


async def measure(
    base_url: str, calls: int, concurrency: int, postgres: str
) -> dict[str, tuple[float, float]]:
    import asyncpg

    url = f"{base_url}/pensions/batch"
    settings = Settings(http_max_connections=concurrency, connector_timeout_s=30)
    admin_dsn = postgres.replace("postgresql+asyncpg", "postgresql", 1)
    name = f"hedui_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(postgres.rsplit("/", 1)[0] + f"/{name}")
    results = {}
    shared = SharedThrottle.connect(engine.url)
    try:
        await migrate(engine)
        async with create_http_client(settings) as client:
            results["bare client"] = await fire(client, url, calls, concurrency, None)
            results["in-memory throttle"] = await fire(
                client, url, calls, concurrency, LocalThrottle()
            )
            results["shared throttle (PostgreSQL)"] = await fire(
                client, url, calls, concurrency, shared
            )
    finally:
        await shared.aclose()
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, running_sandbox(directory) as base_url:
        results = asyncio.run(measure(base_url, args.calls, args.concurrency, args.postgres))
    print(f"{args.calls} partner calls, {args.concurrency} concurrent, limits that never bind")
    print(f"{'path':<30} {'wall ms/call':>13} {'client CPU ms/call':>19}")
    for name, (wall_ms, cpu_ms) in results.items():
        print(f"{name:<30} {wall_ms:>13.2f} {cpu_ms:>19.2f}")
    bare_wall, bare_cpu = results["bare client"]
    for name, (wall_ms, cpu_ms) in list(results.items())[1:]:
        print(
            f"ratio {name} / bare client: {wall_ms / bare_wall:.2f}x wall per call, "
            f"{cpu_ms / max(bare_cpu, 1e-9):.2f}x CPU per call "
            f"(+{cpu_ms - bare_cpu:.2f} ms CPU per call)"
        )


if __name__ == "__main__":
    main()
