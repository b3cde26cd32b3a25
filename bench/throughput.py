"""Concurrent households: verifications per second and how latency holds up under load.

Runs `--total` 3-person verifications, `--concurrency` at a time, against partners with
`--latency-ms` latency in their own process. Run: `python -m bench.throughput`.
"""

import argparse
import asyncio
import statistics
import time

import httpx

from bench._server import create_token, running_service
from bench.latency import SOURCES, percentile, request_body


async def fire(base_url: str, token: str, total: int, concurrency: int) -> list[tuple[float, int]]:
    """(end-to-end ms, slowest source ms) per verification."""
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120, limits=limits
    ) as client:

        async def one(index: int) -> tuple[float, int]:
            body = request_body(f"throughput-{index}", index + 5000)
            async with semaphore:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/verifications", json=body, headers={"Prefer": "wait=60"}
                )
                elapsed = (time.perf_counter() - started) * 1000
            verification = response.json()
            if verification.get("status") != "completed":
                raise RuntimeError(f"verification did not complete: {response.text[:300]}")
            return elapsed, max(source["duration_ms"] for source in verification["sources"])

        return await asyncio.gather(*(one(index) for index in range(total)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    database = {"HEDUI_DATABASE_URL": args.database_url} if args.database_url else {}
    with running_service(database) as (base_url, database_url, partners):
        token = create_token(database_url)
        for source in SOURCES:
            httpx.put(
                f"{partners}/faults/{source}", json={"mode": "ok", "latency_ms": args.latency_ms}
            )
        asyncio.run(fire(base_url, token, args.concurrency, args.concurrency))  # warm-up
        started = time.perf_counter()
        results = asyncio.run(fire(base_url, token, args.total, args.concurrency))
        wall = time.perf_counter() - started
    e2e = [elapsed for elapsed, _ in results]
    slowest = [source for _, source in results]
    print(
        f"{args.total} verifications of 3 people, {args.concurrency} at a time, partners at "
        f"{args.latency_ms} ms in their own process, "
        f"{args.database_url.split(':', 1)[0] if args.database_url else 'sqlite'}"
    )
    print(
        f"throughput            {args.total / wall:8.1f} verifications/s "
        f"({args.total * 7 / wall:.0f} partner calls/s)"
    )
    print(f"end-to-end p50 / p95  {statistics.median(e2e):8.1f} / {percentile(e2e, 0.95):.1f} ms")
    print(f"slowest source p50    {statistics.median(slowest):8.1f} ms")
    print(
        f"e2e / slowest (p50)   {statistics.median(e2e) / max(statistics.median(slowest), 1):8.2f}x"
    )


if __name__ == "__main__":
    main()
