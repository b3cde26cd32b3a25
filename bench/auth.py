"""What a 401 costs: refusing an unknown token and a revoked key, with the principal cache
(HEDUI_PRINCIPAL_CACHE_S=5, the default) and without it (0: a database read per request,
as before the cache).

Each setting gets its own fresh `hedui serve` (SQLite unless `--database-url`, partners in
their own process). `--concurrency` clients send `--requests` `GET /v1/verifications`
with an unknown token, then as many with a revoked key; one more client keeps asking
`/problems/overloaded` (no database, no key) in the same run as the yardstick. Printed:
p50/p99 of each, requests/s of the flood and the p99 ratio refusal ÷ yardstick.
Run: `python -m bench.auth [--requests 5000] [--concurrency 32] [--database-url URL]`.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench._server import create_token, running_service
from bench.latency import percentile
from bench.shedding import RawClient, raw_request


@dataclass
class Flood:
    name: str
    token: str
    refusals: list[float] = field(default_factory=list)
    other: dict[int, int] = field(default_factory=dict)
    bare: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def _flood(base_url: str, flood: Flood, requests: int, workers: int) -> None:
    request = raw_request("GET", "/v1/verifications?limit=1", flood.token)
    remaining = iter(range(requests))
    done = asyncio.Event()

    async def sender() -> None:
        async with RawClient.connect(base_url) as client:
            for _ in remaining:
                started = time.perf_counter()
                status = await client.send(request)
                elapsed_ms = (time.perf_counter() - started) * 1000
                if status == 401:
                    flood.refusals.append(elapsed_ms)
                else:
                    flood.other[status] = flood.other.get(status, 0) + 1

    async def yardstick() -> None:
        bare = raw_request("GET", "/problems/overloaded")
        async with RawClient.connect(base_url) as client:
            while not done.is_set():
                started = time.perf_counter()
                if await client.send(bare) != 200:
                    raise RuntimeError("/problems/overloaded failed")
                flood.bare.append((time.perf_counter() - started) * 1000)

    measuring = asyncio.create_task(yardstick())
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(workers)))
    flood.seconds = time.perf_counter() - started
    done.set()
    await measuring


def _hedui(database_url: str, *args: str) -> str:
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, "HEDUI_DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _revoke_newest(database_url: str) -> None:
    newest = _hedui(database_url, "apikey", "list", "--json").splitlines()[0]
    _hedui(database_url, "apikey", "revoke", json.loads(newest)["id"], "--reason", "bench")


def _run(cache_s: str, requests: int, workers: int, database_url: str | None) -> list[Flood]:
    env = {"HEDUI_PRINCIPAL_CACHE_S": cache_s}
    if database_url:
        env["HEDUI_DATABASE_URL"] = database_url
    with running_service(env) as (base_url, db_url, _partners):
        revoked = create_token(db_url)
        _revoke_newest(db_url)  # the key just created
        floods = [Flood("unknown token", "hd_" + "x" * 43), Flood("revoked key", revoked)]
        for flood in floods:
            asyncio.run(_flood(base_url, flood, requests, workers))
    return floods


def _ms(values: list[float]) -> str:
    if not values:
        return f"{'-':>8} {'-':>8}"
    return f"{statistics.median(values):>6.1f}ms {percentile(values, 0.99):>6.1f}ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    results = {
        cache_s: _run(cache_s, args.requests, args.concurrency, args.database_url)
        for cache_s in ("5", "0")
    }
    print(
        f"{args.requests} GET /v1/verifications per flood from {args.concurrency} concurrent "
        f"clients, {'PostgreSQL' if args.database_url else 'SQLite'}; yardstick interleaved"
    )
    print(
        f"{'cache':<6} {'flood':<14} {'401s':>6} {'other':>8} {'req/s':>7} "
        f"{'401 p50':>8} {'p99':>8} {'bare p50':>9} {'p99':>8} {'p99 ratio':>10}"
    )
    for cache_s, floods in results.items():
        for flood in floods:
            ratio = (
                percentile(flood.refusals, 0.99) / percentile(flood.bare, 0.99)
                if flood.refusals and flood.bare
                else float("nan")
            )
            other = ",".join(f"{c}:{n}" for c, n in sorted(flood.other.items())) or "-"
            rate = len(flood.refusals) / flood.seconds if flood.seconds else 0.0
            print(
                f"{cache_s + ' s':<6} {flood.name:<14} {len(flood.refusals):>6} {other:>8} "
                f"{rate:>7.0f} {_ms(flood.refusals):>17} {_ms(flood.bare):>18} {ratio:>9.2f}x"
            )
    print("ratio = 401 p99 / bare p99 in the same run (the bare answer needs no key, no database)")


if __name__ == "__main__":
    main()
