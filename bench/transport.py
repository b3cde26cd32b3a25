"""One partner call, layer by layer: what each layer of hedui's partner path costs.

Starts `hedui sandbox` as its own process and sends the same one-person pensions query
(`POST /pensions/batch`, parsed) through each layer in turn, `--concurrency` at a time:

1. bare aiohttp: a session's `post` and `read`, the body parsed with `json.loads`;
2. hedui's shared client (`service.http.create_http_client`): httpx's API on aiohttp's pool;
3. a fetch's metered client (`CallMeter.client`, built per call as a fetch builds it, the
   turn taken from a local throttle) and `connectors.http.request` with the connector's
   own parser;
4. the whole fetch: `SourceFetcher.fetch("pensions", household)`, as a verification's run asks a
   source (bulkhead, budget, connector, metered client, outcome), without a health monitor.

Printed: calls/s, client CPU µs per call and the ratio to the bare client.
Run: `python -m bench.transport [--calls N] [--concurrency C]`.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial

import aiohttp

from bench._server import running_sandbox
from connectors.http import request
from connectors.pensions import _evidence
from connectors.registry import load_connectors
from schemas.evidence import HouseholdQuery, MemberQuery, RequestContext
from service.config import Settings
from service.connector.meter import CallMeter, Turns
from service.connector.throttle import Limits, LocalThrottle
from service.connector.wiring import build_configs
from service.http import create_http_client
from service.verification.fanout import SourceFetcher

EXAMPLE_ID_NUMBER = "11010519491231002X"
CONTEXT = RequestContext(consent_id="bench-consent-1", purpose="dibao")
ROUNDS = 5
BODY = {"requests": [{"seq": 1, "sfzh": EXAMPLE_ID_NUMBER}]}


async def fire(
    call: Callable[[], Awaitable[object]], calls: int, concurrency: int
) -> tuple[float, float]:
    """(calls per second, client CPU µs per call)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await call()

    await asyncio.gather(*(one() for _ in range(concurrency * 4)))  # warm the pool
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu * 1e6 / calls


async def measure(base_url: str, calls: int, concurrency: int) -> dict[str, tuple[float, float]]:
    partners = f"{base_url}/pensions"
    settings = Settings(
        http_max_connections=concurrency, connector_timeout_s=30, partner_base_url=base_url
    )
    headers = {"X-Hedui-Consent-Id": CONTEXT.consent_id, "X-Hedui-Purpose": CONTEXT.purpose}
    registry = load_connectors()
    configs = build_configs(registry, settings)
    config = configs["pensions"]
    throttle = LocalThrottle()
    limits = Limits(config.max_concurrency, config.rate_per_s)
    household = HouseholdQuery(
        region_code="110105",
        as_of=date(2026, 12, 1),
        members=(MemberQuery(id_number=EXAMPLE_ID_NUMBER),),
        context=CONTEXT,
    )
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    async with session, create_http_client(settings) as shared:

        async def bare() -> object:
            async with session.post(f"{partners}/batch", json=BODY, headers=headers) as answer:
                answer.raise_for_status()
                return json.loads(await answer.read())

        async def client_layer() -> object:
            answer = await shared.post(f"{partners}/batch", json=BODY, headers=headers)
            answer.raise_for_status()
            return json.loads(answer.content)

        async def metered() -> object:
            loop = asyncio.get_running_loop()
            turns = Turns(throttle, "pensions", limits, loop.time() + config.timeout_s)
            meter = CallMeter(shared, turns)
            async with meter.client(CONTEXT) as client:
                return await request(
                    client, config, "POST", "/batch", partial(_evidence, {1: ""}), json=BODY
                )

        fetcher = SourceFetcher(registry, configs, shared, throttle=throttle)

        async def whole() -> object:
            outcome = await fetcher.fetch("pensions", household)
            if outcome.status.value not in ("ok", "no_record"):
                raise RuntimeError(f"pensions answered {outcome.status.value}: {outcome.detail}")
            return outcome

        layers: dict[str, Callable[[], Awaitable[object]]] = {
            "1 bare aiohttp": bare,
            "2 hedui shared client": client_layer,
            "3 metered client + request": metered,
            "4 SourceFetcher.fetch": whole,
        }
        # Round after round of every layer in turn, the median kept: the machine's drift
        # (the sandbox shares its cores) falls on every layer alike.
        rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in layers}
        for _ in range(ROUNDS):
            for name, call in layers.items():
                rounds[name].append(await fire(call, calls // ROUNDS, concurrency))
    return {
        name: (
            statistics.median(rate for rate, _ in figures),
            statistics.median(cpu for _, cpu in figures),
        )
        for name, figures in rounds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10000, help="per layer, over 5 rounds")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, running_sandbox(directory) as base_url:
        results = asyncio.run(measure(base_url, args.calls, args.concurrency))
    print(
        f"{args.calls} pensions calls, {args.concurrency} concurrent, "
        "sandbox in its own process; CPU of this process only"
    )
    print(f"{'layer':<30} {'calls/s':>9} {'CPU µs/call':>12} {'x bare':>7}")
    bare_cpu = next(iter(results.values()))[1]
    for name, (rate, cpu_us) in results.items():
        print(f"{name:<30} {rate:>9.0f} {cpu_us:>12.0f} {cpu_us / bare_cpu:>7.2f}")
    print("target: the whole fetch within 2x the bare client's CPU per call")


if __name__ == "__main__":
    main()
