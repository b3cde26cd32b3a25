"""Partner calls per second through httpx's default pool versus the aiohttp transport.

Starts `hedui sandbox` as its own process and fires the same batch of concurrent pension
queries through each client. Run: `python -m bench.transport [--calls N] [--concurrency C]`.
"""

import argparse
import asyncio
import tempfile
import time

import httpx

from bench._server import running_sandbox
from service.config import Settings
from service.http import create_http_client

EXAMPLE_ID_NUMBER = "11010519491231002X"


async def fire(
    client: httpx.AsyncClient, url: str, calls: int, concurrency: int
) -> tuple[float, float]:
    """(calls per second, client CPU ms per call)."""
    semaphore = asyncio.Semaphore(concurrency)
    body = {"requests": [{"seq": 1, "sfzh": EXAMPLE_ID_NUMBER}]}

    async def one() -> None:
        async with semaphore:
            response = await client.post(url, json=body)
            response.raise_for_status()

    await asyncio.gather(*(one() for _ in range(min(concurrency, calls))))  # warm the pool
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu * 1000 / calls


async def measure(base_url: str, calls: int, concurrency: int) -> dict[str, tuple[float, float]]:
    url = f"{base_url}/pensions/batch"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results = {}
    async with httpx.AsyncClient(limits=limits, timeout=30) as default_client:
        results["httpx default pool"] = await fire(default_client, url, calls, concurrency)
    settings = Settings(http_max_connections=concurrency, connector_timeout_s=30)
    async with create_http_client(settings) as fast_client:
        results["httpx + aiohttp transport (hedui)"] = await fire(
            fast_client, url, calls, concurrency
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, running_sandbox(directory) as base_url:
        results = asyncio.run(measure(base_url, args.calls, args.concurrency))
    print(f"{args.calls} partner calls, {args.concurrency} concurrent, sandbox in its own process")
    print(f"{'client':<36} {'calls/s':>9} {'client CPU ms/call':>19}")
    for name, (rate, cpu_ms) in results.items():
        print(f"{name:<36} {rate:>9.0f} {cpu_ms:>19.2f}")
    (base_rate, base_cpu), (fast_rate, fast_cpu) = results.values()
    print(
        f"ratio aiohttp/default: {fast_rate / base_rate:.1f}x calls/s, "
        f"{base_cpu / max(fast_cpu, 1e-9):.1f}x less CPU per call"
    )


if __name__ == "__main__":
    main()
