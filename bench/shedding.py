"""How fast an overloaded hedui says no: p99 of the 503 and 429 answers under a flood.

Three phases, each against its own fresh `hedui serve` (SQLite, partners in their own
process), flooded by `--concurrency` clients sending `--requests` verification requests:

- saturated: `HEDUI_MAX_IN_FLIGHT_RUNS=4`, four runs held by a hanging bank → 503;
- queue_full: `HEDUI_RUN_MODE=queue` with no worker and `HEDUI_MAX_QUEUE_DEPTH=4`, four
  verifications waiting → 503;
- rate_limited: `HEDUI_RATE_LIMIT_PER_MINUTE=1`, one request spent → 429.

During each flood one more client keeps asking two bare endpoints of the same server:
`/problems/overloaded` (no database, no key) and `/healthz` (one `SELECT 1`). Their
latency in the same run is the yardstick: the ratio says what refusing costs beyond
answering at all on a machine that busy. The aim is a p99 under 100 ms for the refusals.

The flood and the yardstick speak HTTP/1.1 over plain keep-alive sockets with requests
encoded once (`RawClient`): an httpx client costs about a millisecond of CPU per request,
so 32 of them in one process measured mostly their own queue (the server sat idle 80 % of
the time while the client reported a p99 of 500 ms). Filling and reading `/metrics` use
httpx as before.
Run: `python -m bench.shedding [--requests 10000] [--concurrency 32]`.
"""

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bench._server import create_token, running_service
from bench.latency import percentile, request_body

HELD = 4


@dataclass
class Phase:
    name: str
    expected: int
    env: dict[str, str]
    refusals: list[float] = field(default_factory=list)
    other: dict[int, int] = field(default_factory=dict)
    bare: dict[str, list[float]] = field(default_factory=dict)


async def _fill(client: httpx.AsyncClient, partners: str, phase: Phase) -> None:
    """Bring the server to the state in which every further request is refused."""
    if phase.name == "saturated":
        fault = await client.put(f"{partners}/faults/bank", json={"mode": "hang"})
        fault.raise_for_status()
    for index in range(HELD if phase.name != "rate_limited" else 1):
        response = await client.post(
            "/v1/verifications", json=request_body(f"fill-{index}", 900_000 + index)
        )
        if response.status_code != 202:
            raise RuntimeError(f"could not fill the server: {response.status_code}")
    if phase.name == "saturated":
        await _until(client, "hedui_verification_runs_in_flight", HELD)
    if phase.name == "queue_full":
        await _until(client, "hedui_verification_queue_depth", HELD)


async def _until(client: httpx.AsyncClient, gauge: str, value: int) -> None:
    for _ in range(200):
        text = (await client.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith(gauge + " ") and float(line.split()[-1]) >= value:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{gauge} never reached {value}")


class RawClient:
    """One keep-alive HTTP/1.1 connection; requests are bytes made in advance, answers are
    read up to their `Content-Length` (hedui's are never chunked here)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    @asynccontextmanager
    async def connect(cls, base_url: str) -> AsyncIterator["RawClient"]:
        url = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            yield cls(reader, writer)
        finally:
            writer.close()

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1])


def raw_request(method: str, path: str, token: str | None = None, body: object = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _flood(base_url: str, token: str, phase: Phase, requests: int, workers: int) -> None:
    bodies = [
        raw_request("POST", "/v1/verifications", token, request_body(f"flood-{i}", i))
        for i in range(requests)
    ]
    remaining = iter(bodies)
    done = asyncio.Event()

    async def sender() -> None:
        async with RawClient.connect(base_url) as client:
            for request in remaining:
                started = time.perf_counter()
                status = await client.send(request)
                elapsed_ms = (time.perf_counter() - started) * 1000
                if status == phase.expected:
                    phase.refusals.append(elapsed_ms)
                else:
                    phase.other[status] = phase.other.get(status, 0) + 1

    async def yardstick() -> None:
        paths = ("/problems/overloaded", "/healthz")
        requests = {path: raw_request("GET", path) for path in paths}
        async with RawClient.connect(base_url) as client:
            while not done.is_set():
                for path in paths:
                    started = time.perf_counter()
                    if await client.send(requests[path]) != 200:
                        raise RuntimeError(f"{path} failed")
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    phase.bare.setdefault(path, []).append(elapsed_ms)

    bare = asyncio.create_task(yardstick())
    await asyncio.gather(*(sender() for _ in range(workers)))
    done.set()
    await bare


def _run(phase: Phase, requests: int, workers: int) -> None:
    with running_service(phase.env) as (base_url, database_url, partners):
        token = create_token(database_url)

        async def go() -> None:
            limits = httpx.Limits(max_connections=workers + 2)
            async with httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
                limits=limits,
            ) as client:
                await _fill(client, partners, phase)
                await _flood(base_url, token, phase, requests, workers)
                if phase.name == "saturated":
                    await client.delete(f"{partners}/faults/bank")

        asyncio.run(go())


def _ms(values: list[float]) -> str:
    if not values:
        return f"{'-':>8} {'-':>8}"
    return f"{statistics.median(values):>6.1f}ms {percentile(values, 0.99):>6.1f}ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    long_runs = {
        "HEDUI_CONNECTOR_TIMEOUT_S": "300",
        "HEDUI_VERIFICATION_DEADLINE_S": "300",
        "HEDUI_CONNECTORS": '{"bank": {"request_timeout_s": 300}}',
    }
    phases = [
        Phase("saturated", 503, {"HEDUI_MAX_IN_FLIGHT_RUNS": str(HELD), **long_runs}),
        Phase(
            "queue_full",
            503,
            {"HEDUI_RUN_MODE": "queue", "HEDUI_MAX_QUEUE_DEPTH": str(HELD)},
        ),
        Phase("rate_limited", 429, {"HEDUI_RATE_LIMIT_PER_MINUTE": "1"}),
    ]
    for phase in phases:
        _run(phase, args.requests, args.concurrency)
    print(
        f"{args.requests} verification requests per phase from {args.concurrency} concurrent "
        "clients, SQLite, partners in their own process; bare requests interleaved"
    )
    print(
        f"{'phase':<13} {'refused':>8} {'other':>10} {'refusal p50':>11} {'p99':>8} "
        f"{'problems p50':>12} {'p99':>8} {'healthz p50':>11} {'p99':>8} {'p99 ratio':>10} "
        f"{'bare n':>7}"
    )
    for phase in phases:
        problems = phase.bare.get("/problems/overloaded", [])
        ratio = (
            percentile(phase.refusals, 0.99) / percentile(problems, 0.99)
            if phase.refusals and problems
            else float("nan")
        )
        other = ",".join(f"{code}:{count}" for code, count in sorted(phase.other.items())) or "-"
        print(
            f"{phase.name:<13} {len(phase.refusals):>8} {other:>10} "
            f"{_ms(phase.refusals):>20} {_ms(problems):>21} "
            f"{_ms(phase.bare.get('/healthz', [])):>20} {ratio:>9.2f}x {len(problems):>7}"
        )
    print("aim: refusal p99 under 100 ms; ratio = refusal p99 / bare p99 in the same run")


if __name__ == "__main__":
    main()
