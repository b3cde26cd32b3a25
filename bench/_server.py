"""Start `hedui serve` as its own process on a free port, for benchmarks."""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
from sqlalchemy import make_url

from service.crypto.kek import write_key_file

LOG_LEVEL = "INFO"
"""hedui's own default: a benchmark measures what an operator runs (`HEDUI_LOG_LEVEL` in the
environment overrides it). The lines go nowhere, but are built and written all the same."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def key_file() -> Iterator[None]:
    """A key-encryption key for this run, unless one is named already: a PostgreSQL
    deployment must name its key (a SQLite one gets one beside its database)."""
    if os.environ.get("HEDUI_KEY_FILE") or os.environ.get("HEDUI_KEK"):
        yield
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "hedui.key"
        write_key_file(path)
        os.environ["HEDUI_KEY_FILE"] = str(path)
        try:
            yield
        finally:
            del os.environ["HEDUI_KEY_FILE"]


@contextlib.contextmanager
def throwaway_postgres(url: str) -> Iterator[str]:
    """A database of its own on the server of `url`, dropped afterwards: a run never meets
    an earlier run's rows (sealed with another run's key)."""
    admin = url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"hedui_bench_{uuid.uuid4().hex[:8]}"
    # By the URL's parts: a server reached over its Unix socket is named in the query
    # (`postgresql://postgres@/test?host=/var/run/postgresql`), after the database.
    own = make_url(admin).set(database=name).render_as_string(hide_password=False)

    async def run(statement: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield own
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def running_sandbox(directory: str) -> Iterator[str]:
    """Yield the base URL of `hedui sandbox` running as its own process (the partners)."""
    with running_sandbox_process(directory) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def running_sandbox_process(directory: str) -> Iterator[tuple[str, int]]:
    """`running_sandbox`, with the process id (to count the partners' CPU)."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [
            sys.executable,
            "-m",
            "service.cli",
            "sandbox",
            "--port",
            str(port),
            "--data",
            str(Path(directory) / "partners.db"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(f"{base_url}/pensions/health", process)
        yield base_url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux `/proc`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (`hedui serve --workers N`: the N API processes
    under the one that started them), from Linux `/proc`."""
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
                pids += process_tree(int(child))
    return pids


@contextlib.contextmanager
def running_service(
    env: Mapping[str, str] | None = None, *, separate_sandbox: bool = True
) -> Iterator[tuple[str, str, str]]:
    """Yield (base_url, database_url, partners_url) of a fresh service.

    By default the partner agencies run in their own process, as real partners do, so
    that their CPU is not counted as hedui's; `separate_sandbox=False` measures the
    all-in-one `hedui serve` default instead. `env`: the service's own settings.
    """
    env = dict(env or {})
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        if separate_sandbox:
            partners = stack.enter_context(running_sandbox(directory))
            env = {"HEDUI_SANDBOX": "off", "HEDUI_PARTNER_BASE_URL": partners, **env}
        else:
            # Explicitly: with PostgreSQL, `auto` would leave the sandbox out.
            env = {"HEDUI_SANDBOX": "on", **env}
        service = stack.enter_context(_service(directory, env))
        yield service[0], service[1], partners if separate_sandbox else f"{service[0]}/sandbox"


@contextlib.contextmanager
def running_hedui(
    partners: str,
    env: Mapping[str, str] | None = None,
    *,
    workers: int = 0,
    api_processes: int = 1,
) -> Iterator[tuple[str, str, list[int]]]:
    """Yield (base_url, database_url, pids) of `hedui serve --workers api_processes`
    against `partners`, with `workers` `hedui worker` processes (queue mode) when asked;
    pids: every hedui process."""
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        env = {"HEDUI_SANDBOX": "off", "HEDUI_PARTNER_BASE_URL": partners, **(env or {})}
        if workers:
            env["HEDUI_RUN_MODE"] = "queue"
        pids: list[int] = []
        base_url, database_url = stack.enter_context(
            _service(directory, env, pids=pids, api_processes=api_processes)
        )
        for _ in range(workers):
            stack.enter_context(_worker(database_url, pids, env))
        yield base_url, database_url, pids


@contextlib.contextmanager
def _worker(database_url: str, pids: list[int], env: Mapping[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker"],
        env={
            **os.environ,
            "HEDUI_DATABASE_URL": database_url,
            "HEDUI_LOG_LEVEL": os.environ.get("HEDUI_LOG_LEVEL", LOG_LEVEL),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids.append(process.pid)
    try:
        time.sleep(1.5)  # connected and listening before the first job arrives
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def _service(
    directory: str,
    env: Mapping[str, str],
    *,
    pids: list[int] | None = None,
    api_processes: int = 1,
) -> Iterator[tuple[str, str]]:
    port = free_port()
    env = dict(env)
    database_url = env.pop(
        "HEDUI_DATABASE_URL", f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
    )
    environment = {
        **os.environ,
        "HEDUI_PORT": str(port),
        "HEDUI_DATABASE_URL": database_url,
        "HEDUI_SANDBOX_DATA": str(Path(directory) / "sandbox.db"),
        "HEDUI_LOG_LEVEL": os.environ.get("HEDUI_LOG_LEVEL", LOG_LEVEL),
        **env,
    }
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "service.cli", "serve", "--workers", str(api_processes)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(f"{base_url}/healthz", process)
        if api_processes > 1:
            # Every process answers /healthz once it is up; the first to answer says
            # nothing of the others, so give them the time they take to start.
            time.sleep(2)
        if pids is not None:
            pids += process_tree(process.pid)
        yield base_url, database_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy within 30 s")


def create_token(database_url: str, role: str = "caseworker", region: str = "00") -> str:
    output = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [
            sys.executable,
            "-m",
            "service.cli",
            "apikey",
            "create",
            "--role",
            role,
            "--region",
            region,
        ],
        env={**os.environ, "HEDUI_DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        text=True,
    )
    return output.stdout.strip().splitlines()[-1]
