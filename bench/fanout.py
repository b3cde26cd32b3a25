"""hedui against a bare client making the same partner calls: the yardstick of hedui's cost.

One standalone sandbox (`hedui sandbox`, its own process, every agency at `--latency-ms`)
serves both. The bare client is aiohttp making exactly the calls hedui's six built-in
connectors make for a 3-person household (vehicles XML batch, pensions JSON batch, housing
fund once per member, real-estate pages until the last, public payroll, bank submit and
poll), all at once, parsing each answer. hedui is driven over its API with `Prefer: wait`.
Both run at concurrency 1 and `--concurrency` (32), on SQLite and, with `--database-url`, on
PostgreSQL; hedui also with more API processes (`--processes 1,2`: `hedui serve --workers
N`, each running the verifications it accepts) at `--concurrency`. Each hedui row is
compared with a bare run made just before it at the same concurrency (the machine's speed
drifts within minutes; the first bare rows are printed too). Printed side by side:
p50/p95 end to end, households/s, the ratios, and CPU milliseconds per household of the
bare client and of every hedui process, of the partners (the sandbox's process) and of
everything together, with the households/s the machine's cores could carry at that cost.
The cores are shared: the last line says how much CPU per household 0.8x the bare
client's rate leaves hedui once the partners and the driving client have had theirs.

Run: `python -m bench.fanout [--households 200] [--processes 1,2] [--profile DIR]
[--database-url postgresql+asyncpg://...]`.
"""

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

import aiohttp
import httpx
from defusedxml.ElementTree import fromstring

from bench._server import (
    cpu_seconds,
    create_token,
    key_file,
    running_hedui,
    running_sandbox_process,
    throwaway_postgres,
)
from bench.latency import SOURCES, household, percentile, request_body
from bench.profile import headline, py_spy, sampling
from connectors.bank import poll_delays


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    concurrency: int
    households: int
    e2e_ms: list[float]
    wall_s: float
    cpu_s: float
    """The measured side's CPU: the bare client's process, or every hedui process."""
    partners_cpu_s: float
    """The sandbox's CPU over the same households (the partners' work)."""
    driver_cpu_s: float = 0.0
    """The benchmark's own client driving hedui's API (not hedui's cost, but a core's)."""

    @property
    def per_second(self) -> float:
        return self.households / self.wall_s

    @property
    def cpu_ms_per_household(self) -> float:
        return self.cpu_s * 1000 / self.households

    @property
    def partners_ms_per_household(self) -> float:
        return self.partners_cpu_s * 1000 / self.households

    @property
    def all_ms_per_household(self) -> float:
        """Every process's CPU per household: measured side, partners, driver."""
        return (self.cpu_s + self.partners_cpu_s + self.driver_cpu_s) * 1000 / self.households

    def line(self) -> str:
        return (
            f"{self.name:<24} {self.concurrency:>4} {self.households:>6} "
            f"{statistics.median(self.e2e_ms):>8.1f} {percentile(self.e2e_ms, 0.95):>8.1f} "
            f"{self.per_second:>8.1f} {self.cpu_ms_per_household:>10.2f} "
            f"{self.partners_ms_per_household:>9.2f} {self.all_ms_per_household:>8.2f} "
            f"{ceiling(self.all_ms_per_household):>8.0f}"
        )


CORES = os.cpu_count() or 1


def ceiling(cpu_ms_per_household: float) -> float:
    """Households/s this machine's cores carry at that much CPU per household, all busy."""
    return CORES * 1000 / cpu_ms_per_household


# The bare client: the same requests as the connectors, nothing else.


def _vehicles_body(id_numbers: list[str]) -> bytes:
    root = Element("VehicleQuery")
    for id_number in id_numbers:
        SubElement(root, "Person", idNumber=id_number)
    return tostring(root, encoding="utf-8")


async def bare_household(session: aiohttp.ClientSession, partners: str, ids: list[str]) -> None:
    async def vehicles() -> None:
        async with session.post(
            f"{partners}/vehicles/query",
            data=_vehicles_body(ids),
            headers={"Content-Type": "application/xml"},
        ) as response:
            fromstring(await response.read())

    async def pensions() -> None:
        body = {"requests": [{"seq": seq, "sfzh": id_number} for seq, id_number in enumerate(ids)]}
        async with session.post(f"{partners}/pensions/batch", json=body) as response:
            json.loads(await response.read())

    async def housing_fund(id_number: str) -> None:
        async with session.post(
            f"{partners}/housing_fund/account/query", data={"zjhm": id_number}
        ) as response:
            json.loads(await response.read())

    async def real_estate() -> None:
        token: str | None = None
        while True:
            params = {"page_size": "20", **({"page_token": token} if token else {})}
            async with session.post(
                f"{partners}/real_estate/registrations/search",
                params=params,
                json={"id_numbers": ids},
            ) as response:
                token = json.loads(await response.read()).get("next_page_token")
            if token is None:
                return

    async def public_payroll() -> None:
        async with session.post(
            f"{partners}/public_payroll/verify", json={"sfzh_list": ids}
        ) as response:
            json.loads(await response.read())

    async def bank() -> None:
        async with session.post(
            f"{partners}/bank/inquiries",
            json={"customers": [{"id_number": id_number} for id_number in ids]},
        ) as response:
            inquiry = json.loads(await response.read())
        delays = poll_delays(0.01, 0.5)
        while inquiry.get("state") != "DONE":
            await asyncio.sleep(next(delays))
            async with session.get(
                f"{partners}/bank/inquiries/{inquiry['inquiry_id']}"
            ) as response:
                inquiry = json.loads(await response.read())

    await asyncio.gather(
        vehicles(),
        pensions(),
        *(housing_fund(id_number) for id_number in ids),
        real_estate(),
        public_payroll(),
        bank(),
    )


async def run_bare(
    partners: str, partners_pid: int, households: int, concurrency: int, offset: int
) -> Row:
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(index: int) -> float:
            async with semaphore:
                started = time.perf_counter()
                await bare_household(session, partners, household(offset + index))
                return (time.perf_counter() - started) * 1000

        await asyncio.gather(*(one(index) for index in range(min(concurrency, 8))))  # warm-up
        cpu, started = time.process_time(), time.perf_counter()
        partners_before = cpu_seconds(partners_pid)
        e2e = await asyncio.gather(*(one(index) for index in range(households)))
        wall, cpu_used = time.perf_counter() - started, time.process_time() - cpu
        partners_used = cpu_seconds(partners_pid) - partners_before
    return Row("bare aiohttp", concurrency, households, list(e2e), wall, cpu_used, partners_used)


async def run_hedui(
    name: str,
    base_url: str,
    token: str,
    pids: list[int],
    partners_pid: int,
    households: int,
    concurrency: int,
    offset: int,
    *,
    warm_up: int = 8,
) -> Row:
    """`households` households over hedui's API, `concurrency` at a time, after
    `warm_up` (every process's caches filled and connections open)."""
    semaphore = asyncio.Semaphore(concurrency)
    # Driven with aiohttp, as light a client as the bare one: the driver shares the cores
    # with hedui and the partners, and httpx here cost 1.6 ms of CPU per household.
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=60"}
    async with aiohttp.ClientSession(
        base_url=base_url,
        connector=connector,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=120),
    ) as client:

        async def one(index: int) -> float:
            body: dict[str, Any] = request_body(f"fanout-{offset + index}", offset + index)
            async with semaphore:
                started = time.perf_counter()
                async with client.post("/v1/verifications", json=body) as response:
                    answer = await response.read()
                elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200 or json.loads(answer).get("status") != "completed":
                raise RuntimeError(f"verification did not complete: {answer[:300]!r}")
            return elapsed

        await asyncio.gather(*(one(households + index) for index in range(warm_up)))
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        partners_before, driver_before = cpu_seconds(partners_pid), time.process_time()
        started = time.perf_counter()
        e2e = await asyncio.gather(*(one(index) for index in range(households)))
        wall = time.perf_counter() - started
        cpu_used = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        partners_used = cpu_seconds(partners_pid) - partners_before
        driver_used = time.process_time() - driver_before
    return Row(name, concurrency, households, list(e2e), wall, cpu_used, partners_used, driver_used)


def set_latency(partners: str, latency_ms: int) -> None:
    for source in SOURCES:
        httpx.put(f"{partners}/faults/{source}", json={"mode": "ok", "latency_ms": latency_ms})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=200, help="per row at concurrency N")
    parser.add_argument("--sequential", type=int, default=40, help="households at concurrency 1")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument(
        "--processes",
        default="1,2",
        help="hedui API processes, comma-separated (`hedui serve --workers N`, inline runs)",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="hedui worker processes (queue, PostgreSQL)"
    )
    parser.add_argument(
        "--database-url", help="also run on this PostgreSQL database (it gets hedui's tables)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run each row at --concurrency once more under py-spy, keep its samples in DIR "
        "and print where the CPU went (bench/profile.py; needs py-spy)",
    )
    args = parser.parse_args()
    if args.profile is not None:
        py_spy()  # before an hour of measuring, not after it
    databases: list[tuple[str, dict[str, str]]] = [("sqlite", {})]
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = stack.enter_context(throwaway_postgres(args.database_url))
            databases.append(("postgresql", {"HEDUI_DATABASE_URL": url}))
        partners, partners_pid = stack.enter_context(running_sandbox_dir())
        stack.enter_context(key_file())
        set_latency(partners, args.latency_ms)
        bare = {
            1: asyncio.run(run_bare(partners, partners_pid, args.sequential, 1, 100_000)),
            args.concurrency: asyncio.run(
                run_bare(partners, partners_pid, args.households, args.concurrency, 200_000)
            ),
        }
        rows += bare.values()
        profiles: dict[str, list[Path]] = {}
        beside: dict[int, Row] = {}
        """The bare client's run beside each hedui row (by the row's index)."""
        processes = [int(count) for count in args.processes.split(",")]
        offset = 300_000
        for dialect, env in databases:
            workers = args.workers if dialect == "postgresql" else 0
            for count in processes:
                with running_hedui(partners, env, workers=workers, api_processes=count) as (
                    base_url,
                    database_url,
                    pids,
                ):
                    token = create_token(database_url)
                    name = (
                        f"hedui {dialect}"
                        + (f" x{count}" if count > 1 else "")
                        + (f" +{workers}w" if workers else "")
                    )
                    # One process's latency alone is the sequential yardstick; more
                    # processes are for throughput.
                    sizes = [(args.concurrency, args.households)]
                    if count == processes[0]:
                        sizes.insert(0, (1, args.sequential))
                    for concurrency, households in sizes:
                        offset += 100_000
                        # The machine's speed drifts by a third within minutes (other
                        # tenants of its host): each row is compared with the bare client
                        # run just before it, at the same concurrency, not with the first.
                        beside[len(rows)] = asyncio.run(
                            run_bare(
                                partners, partners_pid, households, concurrency, offset + 50_000
                            )
                        )
                        drive = partial(
                            run_hedui,
                            name,
                            base_url,
                            token,
                            pids,
                            partners_pid,
                            households,
                            concurrency,
                        )
                        rows.append(asyncio.run(drive(offset, warm_up=8 * count)))
                        if args.profile is not None and concurrency > 1:
                            # Again, under py-spy (which slows what it samples): the row
                            # above was measured without it.
                            offset += 100_000
                            with sampling(pids, args.profile, _slug(name)) as files:
                                asyncio.run(drive(offset, warm_up=0))
                            profiles[name] = files
    report(args, rows, bare, beside, profiles)


def report(
    args: argparse.Namespace,
    rows: list[Row],
    bare: dict[int, Row],
    beside: dict[int, Row],
    profiles: dict[str, list[Path]],
) -> None:
    """The table, each hedui row against the bare run beside it, the CPU budget the
    throughput target leaves hedui, and the profiles when asked for."""
    print(
        f"3-person households, partners at {args.latency_ms} ms in their own process "
        "(hedui sandbox). CPU ms/hh: the bare client's process, or every hedui process; "
        "partners: the sandbox's; all: both, with the benchmark's own client driving hedui; "
        f"ceiling: households/s {CORES} cores carry at 'all', every core busy"
    )
    print(
        f"{'':<24} {'conc':>4} {'hh':>6} {'p50 ms':>8} {'p95 ms':>8} {'hh/s':>8} "
        f"{'CPU ms/hh':>10} {'partners':>9} {'all':>8} {'ceiling':>8}"
    )
    for row in rows:
        print(row.line())
    print("each hedui row against the bare client run just before it (p50, households/s, CPU):")
    for index, row in enumerate(rows):
        if row.name.startswith("hedui"):
            base = beside[index]
            extra_ms = statistics.median(row.e2e_ms) - statistics.median(base.e2e_ms)
            print(
                f"{row.name} at {row.concurrency:>2}: p50 {extra_ms:+6.1f} ms "
                f"({statistics.median(base.e2e_ms):.1f} bare), "
                f"households/s {row.per_second / base.per_second:.2f}x bare "
                f"({base.per_second:.1f}), "
                f"CPU/household {row.cpu_ms_per_household / base.cpu_ms_per_household:.1f}x "
                f"bare ({base.cpu_ms_per_household:.2f} ms)"
            )
    top_rate = statistics.median(
        row.per_second
        for row in [bare[args.concurrency], *beside.values()]
        if row.concurrency == args.concurrency
    )
    others = [row for row in rows if row.name.startswith("hedui") and row.concurrency > 1]
    if others:
        # What 0.8x the bare client's rate leaves hedui, once the partners and the driver
        # have had theirs: on a machine whose cores all three share, the throughput target
        # is a CPU target too.
        rest = statistics.median(
            (row.partners_cpu_s + row.driver_cpu_s) * 1000 / row.households for row in others
        )
        budget = CORES * 1000 / (0.8 * top_rate) - rest
        print(
            f"0.8x bare at {args.concurrency} is {0.8 * top_rate:.0f} households/s (median of the "
            f"bare runs): on "
            f"{CORES} cores shared with the partners and the driver ({rest:.1f} ms/hh), hedui "
            f"may spend at most {budget:.1f} ms of CPU per household"
        )
    print("targets: p50 within 5 ms at 1; >= 0.8x bare households/s at 32; <= 8 ms CPU/household")
    for name, files in profiles.items():
        print(f"\nprofile of {name} at {args.concurrency} (every hedui process; {args.profile}):")
        print("\n".join(headline(files).lines()))


def _slug(name: str) -> str:
    return name.replace(" ", "-")


@contextlib.contextmanager
def running_sandbox_dir() -> Iterator[tuple[str, int]]:
    """The standalone sandbox in a directory of its own: its URL and process id."""
    with (
        tempfile.TemporaryDirectory() as directory,
        running_sandbox_process(directory) as partners,
    ):
        yield partners


if __name__ == "__main__":
    main()
