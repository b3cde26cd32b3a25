"""Instructions per household, hedui against the bare client: the yardstick that the
machine's other load does not move.

CPU time per household (`bench.fanout`) swings by a tenth or a fifth from one run to the
next on a shared machine, more than most single changes save. Instructions executed do not:
this script runs hedui's API process (`hedui serve`, inline runs, SQLite) under valgrind's
callgrind, drives it over its API with `Prefer: wait` (`--concurrency` at a time), and reads
the instructions the process executed between two dumps of callgrind's counters, one after
`--first` households and one after `--then` more, so that start-up and warm-up are left out.
The bare aiohttp client making the same partner calls (`bench.fanout`'s) is counted the same
way in a process of its own. Both ask the standalone sandbox (`hedui sandbox`, its own
process, not counted). Printed: millions of instructions per household of each, and the
ratio. Two runs of the same code agree within a few per cent (timers that fire while the
slowed process waits are counted too); the kernel's work (sockets, the disk) is not counted.

Needs valgrind (`apt install valgrind`); a household under callgrind takes about half a
second. Run: `python -m bench.instructions [--first 20] [--then 60] [--concurrency 4]`.
"""

import argparse
import asyncio
import contextlib
import glob
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from bench._server import LOG_LEVEL, create_token, free_port, key_file
from bench.fanout import bare_household, running_sandbox_dir, set_latency
from bench.latency import household, request_body

# Budgets far above a household's time under callgrind (about 50 times slower than native):
# a source that timed out would make a cheaper household than a real one.
SLOW_ENV = {"HEDUI_CONNECTOR_TIMEOUT_S": "60", "HEDUI_VERIFICATION_DEADLINE_S": "120"}


def _callgrind(out: Path, command: list[str]) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", *command]


def _total(path: str) -> int:
    """The instructions a callgrind dump counted."""
    for line in Path(path).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def _dumps(out: Path, pid: int) -> list[int]:
    files = sorted(glob.glob(f"{out}.{pid}.*"), key=lambda name: int(name.rsplit(".", 1)[1]))
    return [_total(name) for name in files if name.rsplit(".", 1)[1].isdigit()]


def _dump(pid: int) -> None:
    subprocess.run(["callgrind_control", "--dump", str(pid)], capture_output=True, check=True)  # noqa: S603, S607 - valgrind's own tool, fixed arguments
    time.sleep(1)


async def _drive(base_url: str, token: str, households: int, concurrency: int, offset: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=600"}
    async with aiohttp.ClientSession(
        base_url=base_url, headers=headers, timeout=aiohttp.ClientTimeout(total=900)
    ) as client:

        async def one(index: int) -> None:
            async with (
                semaphore,
                client.post(
                    "/v1/verifications",
                    json=request_body(f"instr-{offset + index}", offset + index),
                ) as response,
            ):
                answer = await response.read()
            if response.status != 200 or b'"completed"' not in answer:
                raise RuntimeError(f"verification did not complete: {answer[:300]!r}")

        await asyncio.gather(*(one(index) for index in range(households)))


def hedui_instructions(partners: str, first: int, then: int, concurrency: int) -> float:
    """Instructions per household of hedui's API process between the two dumps."""
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        database_url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        env = {
            **os.environ,
            **SLOW_ENV,
            "HEDUI_PORT": str(port),
            "HEDUI_DATABASE_URL": database_url,
            "HEDUI_SANDBOX": "off",
            "HEDUI_PARTNER_BASE_URL": partners,
            "HEDUI_LOG_LEVEL": os.environ.get("HEDUI_LOG_LEVEL", LOG_LEVEL),
        }
        out = Path(directory) / "hedui.callgrind"
        process = subprocess.Popen(  # noqa: S603 - valgrind and our own CLI, fixed arguments
            _callgrind(out, [sys.executable, "-m", "service.cli", "serve", "--workers", "1"]),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 600
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base_url}/healthz", timeout=10).status_code == 200:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("hedui did not start under callgrind")
                time.sleep(1)
            token = create_token(database_url)
            asyncio.run(_drive(base_url, token, concurrency * 2, concurrency, 900_000))  # warm
            _dump(process.pid)
            asyncio.run(_drive(base_url, token, first, concurrency, 910_000))
            _dump(process.pid)
            asyncio.run(_drive(base_url, token, then, concurrency, 920_000))
            _dump(process.pid)
            counts = _dumps(out, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)
    return counts[-1] / then


def bare_instructions(partners: str, first: int, then: int, concurrency: int) -> float:
    """Instructions per household of the bare client: two processes, `first` and
    `first + then` households, the difference divided by `then`."""
    totals = []
    with tempfile.TemporaryDirectory() as directory:
        for count in (first, first + then):
            out = Path(directory) / f"bare{count}.callgrind"
            command = [
                sys.executable,
                "-m",
                "bench.instructions",
                "--bare-client",
                partners,
                str(count),
                str(concurrency),
            ]
            subprocess.run(_callgrind(out, command), capture_output=True, check=True)  # noqa: S603 - valgrind and this script, fixed arguments
            (name,) = glob.glob(f"{out}.*")
            totals.append(_total(name))
    return (totals[1] - totals[0]) / then


async def _bare_client(partners: str, households: int, concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

        async def one(index: int) -> None:
            async with semaphore:
                await bare_household(session, partners, household(index))

        await asyncio.gather(*(one(index) for index in range(households)))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--bare-client":
        asyncio.run(_bare_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first", type=int, default=20, help="households before the 1st dump")
    parser.add_argument("--then", type=int, default=60, help="households counted")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    with running_sandbox_dir() as (partners, _), key_file():
        set_latency(partners, args.latency_ms)
        bare = bare_instructions(partners, args.first, args.then, args.concurrency)
        hedui = hedui_instructions(partners, args.first, args.then, args.concurrency)
    print(
        f"3-person households, {args.then} counted, {args.concurrency} at a time, partners at "
        f"{args.latency_ms} ms in their own process (not counted); millions of instructions "
        "per household"
    )
    print(f"bare aiohttp client     {bare / 1e6:8.2f}")
    print(f"hedui API process       {hedui / 1e6:8.2f}   {hedui / bare:5.1f}x bare")


if __name__ == "__main__":
    main()
