"""A large batch end to end: households/s, memory of every process, database size, and the
partner calls/s each agency saw.

Runs `--households` 3-person households (default 100,000) as one NDJSON batch against the
stand-alone sandbox's synthetic people (`hedui sandbox`, its own process, every agency at
`--latency-ms`), in up to three set-ups:

- SQLite: one `hedui serve` process that accepts the batch and runs it (inline);
- PostgreSQL (`--database-url`, a server where a throw-away database may be created) with
  one and with two `hedui worker` processes beside an `HEDUI_RUN_MODE=queue` API process.

It prints households/s, peak RSS of each process after a tenth of the households and at
the end (10k and 100k with the default), database bytes per household, and the household
queries each agency received per second on average, and the most calls of any kind (queries,
polls) it received within any one second and at once, as the agency itself counted them on
arrival (the sandbox's `/traffic`), beside each partner's agreed limits:
`--limits '{"bank": {"rate_per_s": 40, "max_concurrency": 8}}'` sets them for every hedui
process (`HEDUI_CONNECTORS`, see README, Throttles), held in total over all processes on
PostgreSQL. The agencies with agreed limits are served by a sandbox process of their own, as
a real partner has its own servers: in the one sandbox of every agency, a limited agency's
arrivals waited behind the others' work and were counted bunched. Run: `make bench-scale`, or
`python -m bench.scale --households 2000 --database-url postgresql://postgres@127.0.0.1/test`.
The upload is also timed against a bare client streaming the same bytes to a sink, so the
ratio of the two says what reading and storing the batch costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._server import (
    LOG_LEVEL,
    _wait_healthy,
    cpu_seconds,
    create_token,
    free_port,
    key_file,
    running_sandbox_process,
    throwaway_postgres,
)
from bench.latency import SOURCES, request_body

MAX_CONCURRENCY = 32  # the connectors' default bulkhead (max_concurrency)
NOT_HEDUI = frozenset({"partners", "PostgreSQL"})


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    peaks: list[int] = field(default_factory=list)

    def peak_rss_mb(self) -> float:
        """High-water mark of resident memory so far (VmHWM), in MB."""
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL server process on this machine, by pid."""
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                used[int(entry)] = cpu_seconds(int(entry))
    return used


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings (a process started meanwhile: all of its)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _spawn(name: str, args: list[str], env: dict[str, str]) -> Process:
    popen = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, "HEDUI_LOG_LEVEL": os.environ.get("HEDUI_LOG_LEVEL", LOG_LEVEL), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Process(name, popen)


@contextlib.contextmanager
def processes(
    database_url: str, partners: str, workers: int, directory: str, limits: str
) -> Iterator[tuple[str, list[Process]]]:
    port = free_port()
    env = {
        "HEDUI_CONNECTORS": limits,
        "HEDUI_DATABASE_URL": database_url,
        "HEDUI_SANDBOX": "off",
        "HEDUI_PARTNER_BASE_URL": partners,
        "HEDUI_PORT": str(port),
        "HEDUI_SANDBOX_DATA": str(Path(directory) / "sandbox.db"),
        "HEDUI_RUN_MODE": "queue" if workers else "inline",
    }
    started: list[Process] = []
    try:
        api = _spawn("api", ["serve"], env)
        started.append(api)
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{base_url}/healthz", api.popen)
        for n in range(workers):
            started.append(
                _spawn(f"worker {n + 1}", ["worker", "--concurrency", str(MAX_CONCURRENCY)], env)
            )
        yield base_url, started
    finally:
        for process in started:
            process.popen.terminate()
        for process in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=15)


async def households(total: int, offset: int) -> AsyncIterator[bytes]:
    """The batch as NDJSON, generated as it is sent (64 KiB pieces)."""
    pending = bytearray()
    for index in range(total):
        body = request_body(f"scale-{index}", offset + index)
        pending += json.dumps(body, ensure_ascii=False).encode() + b"\n"
        if len(pending) >= 65536:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def database_bytes(database_url: str, directory: str) -> int:
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    async def size() -> int:
        import asyncpg

        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            return int(await connection.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await connection.close()

    return asyncio.run(size())


async def bare_upload(total: int) -> float:
    """Seconds a bare client takes to stream the same NDJSON to a sink that discards it."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def sink(request: Request) -> Response:
        async for _ in request.stream():
            pass
        return Response(status_code=204)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/", sink, methods=["POST"])]), port=port, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.02)
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as client:
        await client.post(f"http://127.0.0.1:{port}/", content=households(total, 0))
    elapsed = time.perf_counter() - started
    server.should_exit = True
    await task
    return elapsed


async def run_batch(
    base_url: str,
    token: str,
    total: int,
    offset: int,
    procs: list[Process],
    partners: Partners,
    *,
    on_sqlite: bool = False,
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=3600) as client:
        cpu_before = {p.name: cpu_seconds(p.popen.pid) for p in procs}
        partners_before = {pid: cpu_seconds(pid) for pid in partners.pids}
        postgres_before = postgres_cpu()
        started = time.perf_counter()
        answer = await client.post(
            "/v1/batches?reference=scale",
            content=households(total, offset),
            headers={"content-type": "application/x-ndjson"},
        )
        uploaded = time.perf_counter() - started
        if answer.status_code != 201:
            raise RuntimeError(f"upload failed: {answer.status_code} {answer.text[:300]}")
        batch_id = answer.json()["id"]
        checkpoint = max(1, total // 10)
        at_checkpoint: dict[str, float] = {}
        while True:
            batch = (await client.get(f"/v1/batches/{batch_id}")).json()
            done = batch["progress"]["done"]
            if done >= checkpoint and not at_checkpoint:
                at_checkpoint = {p.name: p.peak_rss_mb() for p in procs}
            if batch["progress"]["finished"]:
                break
            await asyncio.sleep(2.0)  # the progress count reads every row of the batch
        wall = time.perf_counter() - started
        cpu = {p.name: cpu_seconds(p.popen.pid) - cpu_before[p.name] for p in procs}
        cpu["partners"] = cpu_used(
            partners_before, {pid: cpu_seconds(pid) for pid in partners.pids}
        )
        if not on_sqlite:
            cpu["PostgreSQL"] = cpu_used(postgres_before, postgres_cpu())
    return {
        "cpu_s": cpu,
        "upload_s": uploaded,
        "wall_s": wall,
        "batch": batch,
        "rss_checkpoint": at_checkpoint or {p.name: p.peak_rss_mb() for p in procs},
        "rss_end": {p.name: p.peak_rss_mb() for p in procs},
        "checkpoint": checkpoint,
    }


def agreed(limits: dict[str, dict[str, Any]], source: str) -> str:
    mine = limits.get(source, {})
    rate = mine.get("rate_per_s")
    concurrency = mine.get("max_concurrency")
    at_once = f"{concurrency or MAX_CONCURRENCY:g} at once in total" + (
        "" if concurrency else " (the default)"
    )
    return f"agreed {f'{rate:g}/s' if rate else 'no rate'}, {at_once}"


@dataclass(frozen=True)
class Partners:
    """The sandbox of every agency, and the one of the agencies with agreed limits."""

    everyone: str
    limited: str | None
    limits: dict[str, dict[str, Any]]
    pids: tuple[int, ...] = ()
    """The sandboxes' processes (to count the partners' CPU)."""

    @staticmethod
    def agreed_with(limits: dict[str, dict[str, Any]]) -> set[str]:
        """The agencies with an agreed rate or concurrency (not merely other settings)."""
        return {
            source
            for source, agreed in limits.items()
            if agreed.get("rate_per_s") or agreed.get("max_concurrency")
        }

    def of(self, source: str) -> str:
        """The sandbox that serves `source`."""
        if self.limited is not None and source in self.agreed_with(self.limits):
            return self.limited
        return self.everyone

    def sandboxes(self) -> list[str]:
        return [self.everyone] + ([self.limited] if self.limited else [])

    def connectors(self) -> str:
        """`HEDUI_CONNECTORS`: the agreed limits, and where the limited agencies are."""
        settings = {
            source: {**agreed, "base_url": f"{self.of(source)}/{source}"}
            for source, agreed in self.limits.items()
        }
        return json.dumps(settings)

    def reset(self) -> None:
        for sandbox in self.sandboxes():
            httpx.delete(f"{sandbox}/queries")
            httpx.delete(f"{sandbox}/traffic")

    def counted(self, what: str) -> dict[str, Any]:
        """Each agency's `/queries` or `/traffic`, as its own sandbox counted them."""
        by_sandbox = {
            sandbox: httpx.get(f"{sandbox}/{what}").json() for sandbox in self.sandboxes()
        }
        return {source: by_sandbox[self.of(source)].get(source) for source in SOURCES}


def one_setup(
    label: str,
    database_url: str,
    partners: Partners,
    workers: int,
    total: int,
    offset: int,
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        if database_url.startswith("sqlite"):
            database_url = f"sqlite+aiosqlite:///{Path(directory) / 'scale.db'}"
        with processes(
            database_url, partners.everyone, workers, directory, partners.connectors()
        ) as (base_url, procs):
            token = create_token(database_url)
            partners.reset()
            result = asyncio.run(
                run_batch(
                    base_url,
                    token,
                    total,
                    offset,
                    procs,
                    partners,
                    on_sqlite=database_url.startswith("sqlite"),
                )
            )
            queries = partners.counted("queries")
            traffic = partners.counted("traffic")
            size = database_bytes(database_url, directory)
    batch = result["batch"]
    if not isinstance(batch, dict):
        raise TypeError(batch)
    wall = float(result["wall_s"])  # type: ignore[arg-type]
    print(f"\n## {label}: {total} households, {batch['households']} verifications")
    print(
        f"upload {result['upload_s']:.1f} s, all done after {wall:.1f} s: "
        f"{total / wall:.1f} households/s; by status {batch['by_status']}, "
        f"by recommendation {batch['by_recommendation']}"
    )
    print(f"database: {size / total:.0f} bytes per household ({size / 1e6:.1f} MB)")
    cpu: dict[str, float] = result["cpu_s"]  # type: ignore[assignment]
    hedui = sum(seconds for name, seconds in cpu.items() if name not in NOT_HEDUI)
    cores = os.cpu_count() or 1
    every = sum(cpu.values())
    print(
        "CPU ms per household: "
        + ", ".join(f"{name} {seconds * 1000 / total:.2f}" for name, seconds in cpu.items())
        + f"; hedui in all {hedui * 1000 / total:.2f}, everything {every * 1000 / total:.2f} "
        f"(the machine's {cores} cores carry {cores / every * total:.0f} households/s at "
        "that cost, every core busy)"
    )
    print(f"peak RSS (MB) after {result['checkpoint']} / after {total}:")
    for name, mb in result["rss_checkpoint"].items():  # type: ignore[attr-defined]
        print(f"  {name:10} {mb:8.1f} / {result['rss_end'][name]:8.1f}")  # type: ignore[index]
    print(
        "partner calls as each agency counted them on arrival: household queries per second "
        "on average; every call (queries, polls) at the peak, in any one second and at once; "
        "agreed limits:"
    )
    for source in SOURCES:
        calls = int(queries.get(source) or 0)
        seen: dict[str, int] = traffic.get(source) or {}
        print(
            f"  {source:15} {calls / wall:8.1f}/s  peak {seen.get('max_per_second', 0):5}/s "
            f"{seen.get('max_in_flight', 0):4} at once  ({calls} queries, "
            f"{seen.get('calls', 0)} calls; {agreed(partners.limits, source)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--database-url", help="PostgreSQL server for the worker set-ups")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--workers", default="1,2", help="worker counts to run on PostgreSQL, comma-separated"
    )
    parser.add_argument(
        "--limits",
        default="{}",
        help='partners\' agreed limits, JSON as in HEDUI_CONNECTORS: {"bank": {"rate_per_s": 40}}',
    )
    args = parser.parse_args()
    limits = json.loads(args.limits)
    os.environ.setdefault("HEDUI_MAX_BATCH_HOUSEHOLDS", str(max(100_000, args.households)))

    bare_s = asyncio.run(bare_upload(args.households))
    print(
        f"bare client streaming the same {args.households}-line NDJSON to a sink: "
        f"{bare_s:.2f} s ({args.households / bare_s:.0f} lines/s)"
    )
    limited = bool(Partners.agreed_with(limits))
    with (
        tempfile.TemporaryDirectory() as directory,
        tempfile.TemporaryDirectory() as own,
        running_sandbox_process(directory) as (everyone, everyone_pid),
        running_sandbox_process(own) if limited else contextlib.nullcontext() as alone,
        key_file(),
    ):
        partners = Partners(
            everyone,
            alone[0] if alone else None,
            limits,
            (everyone_pid, *((alone[1],) if alone else ())),
        )
        for sandbox in partners.sandboxes():
            for source in SOURCES:
                httpx.put(
                    f"{sandbox}/faults/{source}",
                    json={"mode": "ok", "latency_ms": args.latency_ms},
                )
        offset = 0
        if not args.skip_sqlite:
            one_setup(
                "SQLite, one inline process",
                "sqlite",
                partners,
                0,
                args.households,
                offset,
            )
            offset += args.households
        if args.database_url:
            for workers in (int(n) for n in args.workers.split(",")):
                with throwaway_postgres(args.database_url) as url:
                    one_setup(
                        f"PostgreSQL, API + {workers} worker(s)",
                        url,
                        partners,
                        workers,
                        args.households,
                        offset,
                    )
                offset += args.households


if __name__ == "__main__":
    main()
