"""Per-call CPU of a declarative connector against a hand-written one doing the same job.

A loopback partner (its own process, so its CPU is not counted) answers the tax agency's
batch format. In the same run, interleaved round by round, three clients ask it about a
household of `--members` people, `--calls` times each:

- a bare httpx client that posts the batch and parses the JSON (the floor: transport only);
- a hand-written tax connector (wire models, fen to yuan, records), as a built-in is written;
- the declarative connector built from examples/connectors/tax.json.

CPU per call is this process's CPU time (`time.process_time`) divided by the calls made.
Run: `python -m bench.declarative [--calls N] [--members N] [--rounds N]`.
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Literal

import httpx
from aiohttp import web
from pydantic import Field

from bench._server import free_port
from connectors.base import ConnectorConfig, fetch_evidence
from connectors.declarative import build_connector, validate_spec
from connectors.http import request
from connectors.partner import PartnerConnector
from connectors.wire import PartnerIdNumber, WireModel, parse_json
from schemas.evidence import (
    Evidence,
    HouseholdQuery,
    MemberQuery,
    RequestContext,
    TaxedIncomeRecord,
)
from schemas.identity import check_character
from service.config import Settings
from service.http import create_http_client

SPEC = Path(__file__).resolve().parents[1] / "examples" / "connectors" / "tax.json"


# The partner ------------------------------------------------------------------------------


def _serve(port: int) -> None:
    async def batch(request: web.Request) -> web.Response:
        body = await request.json()
        results = [
            {"sfzh": item["sfzh"], "found": True, "taxYear": 2025, "taxableIncome": 9_600_000}
            if index % 2 == 0
            else {"sfzh": item["sfzh"], "found": False}
            for index, item in enumerate(body["taxpayers"])
        ]
        return web.json_response({"retCode": "000000", "results": results})

    app = web.Application()
    app.router.add_post("/tax/income/batch", batch)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


# The hand-written connector ---------------------------------------------------------------


class _Result(WireModel):
    sfzh: PartnerIdNumber
    found: bool
    taxYear: int | None = Field(default=None, ge=2000, le=2100)  # noqa: N815 - wire name
    taxableIncome: int | None = Field(default=None, ge=0)  # noqa: N815 - wire name


class _Answer(WireModel):
    retCode: Literal["000000"]  # noqa: N815 - wire name
    results: list[_Result]


class _Health(WireModel):
    retCode: Literal["000000"]  # noqa: N815 - wire name


class HandWrittenTax(PartnerConnector[ConnectorConfig]):
    name: ClassVar[str] = "tax"
    title: ClassVar[str] = "个税 (hand-written)"
    version: ClassVar[str] = "bench"
    health_path: ClassVar[str] = "/health"
    health_model: ClassVar[type[WireModel]] = _Health

    async def ask(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        body = {"taxpayers": [{"sfzh": id_number} for id_number in household.id_numbers]}
        answer = await request(
            client, config, "POST", "/income/batch", lambda raw: parse_json(raw, _Answer), json=body
        )
        records = [
            TaxedIncomeRecord(
                id_number=result.sfzh,
                year=result.taxYear,
                annual_amount=Decimal(result.taxableIncome) / 100,
            )
            for result in answer.results
            if result.found and result.taxYear is not None and result.taxableIncome is not None
        ]
        return Evidence(records=records, answered=[result.sfzh for result in answer.results])


# The measurement --------------------------------------------------------------------------


def _people(count: int) -> list[str]:
    first = [f"53010219900101{index:03d}" for index in range(count)]
    return [first17 + check_character(first17) for first17 in first]


async def _cpu_per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - started) / calls * 1e6  # µs


async def main(calls: int, members: int, rounds: int) -> None:
    port = free_port()
    partner = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    partner.start()
    base_url = f"http://127.0.0.1:{port}/tax"
    client = create_http_client(Settings())
    try:
        for _ in range(100):
            try:
                await client.post(f"{base_url}/income/batch", json={"taxpayers": []})
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        household = HouseholdQuery(
            region_code="530102",
            as_of=date(2026, 11, 20),
            members=tuple(MemberQuery(id_number=number) for number in _people(members)),
            context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
        )
        spec = json.loads(SPEC.read_text(encoding="utf-8"))
        spec["base_url"] = base_url
        spec["mode"]["max_items"] = max(members, 1)
        declarative = build_connector(validate_spec(spec), "1")
        hand_written = HandWrittenTax()
        config = ConnectorConfig(base_url=base_url)
        declared_config = declarative.default_config()
        body = {"taxpayers": [{"sfzh": id_number} for id_number in household.id_numbers]}

        async def bare() -> object:
            response = await client.post(f"{base_url}/income/batch", json=body)
            return json.loads(response.content)

        async def by_hand() -> object:
            return await fetch_evidence(hand_written, household, config, client)

        async def by_spec() -> object:
            return await fetch_evidence(declarative, household, declared_config, client)

        assert (await by_hand()) == (await by_spec()), "both connectors must yield the same"  # noqa: S101
        clients = {"bare httpx": bare, "hand-written": by_hand, "declarative": by_spec}
        for call in clients.values():  # warm up connections, caches and imports
            await _cpu_per_call(call, max(calls // 10, 10))
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(rounds):
            for name, call in clients.items():
                samples[name].append(await _cpu_per_call(call, calls))
    finally:
        await client.aclose()
        partner.terminate()
        partner.join()

    median = {name: statistics.median(values) for name, values in samples.items()}
    print(
        f"tax batch of {members} members, {calls} calls x {rounds} rounds, "
        "CPU per call in this process (median of rounds)"
    )
    print(f"{'client':<14}{'CPU/call':>12}{'vs bare':>10}{'vs hand-written':>17}")
    for name, value in median.items():
        print(
            f"{name:<14}{value:>10.0f}µs{value / median['bare httpx']:>9.2f}x"
            f"{value / median['hand-written']:>16.2f}x"
        )
    ratio = median["declarative"] / median["hand-written"]
    print(f"declarative / hand-written: {ratio:.2f}x (target: at most 1.5x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.members, arguments.rounds))
