"""Several processes on one PostgreSQL, as `hedui serve` and `hedui worker` run in
production: the partner agencies (`hedui sandbox`) count every household query they get."""

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import (
    CLIENT_TLS,
    POSTGRES_URL,
    REQUIRE_POSTGRES,
    _create_postgres_database,
    _free_port,
    _postgres_reachable,
)
from tests.e2e.gates import proxied
from tests.factories import make_id_number, member, verification_body

SOURCES = ("vehicles", "pensions", "housing_fund", "real_estate", "public_payroll", "bank")

SCALE_OUT_COUNT = int(os.environ.get("HEDUI_TEST_SCALE_OUT_COUNT", "100"))
"""Verifications of the two-APIs-two-workers test. Issue #9 asks for 500: that takes
several minutes on a loaded two-core machine, so the everyday suite runs 100 (the same
paths, five times fewer), and `HEDUI_TEST_SCALE_OUT_COUNT=500` runs the full count."""


@pytest.fixture
async def fresh_postgres() -> AsyncIterator[str]:
    """A database of its own: no other test's unfinished verification can be swept here."""
    if not _postgres_reachable():
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but unreachable at {POSTGRES_URL}")
        pytest.skip("PostgreSQL is not reachable")
    url, drop = await _create_postgres_database()
    yield url
    await drop()


class Processes:
    """hedui processes started by a test, each logging to its own file; all are ended."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = {**os.environ, "HEDUI_LOG_LEVEL": "WARNING", **env}
        self.started: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        self.logs.append(log)
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "service.cli", *args],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        return process

    def run(self, *args: str) -> str:
        return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "service.cli", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def end(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


@contextlib.asynccontextmanager
async def processes(directory: Path, env: dict[str, str]) -> AsyncIterator[Processes]:
    group = Processes(directory, env)
    try:
        yield group
    finally:
        # Waited for in a thread: the processes' shutdown may need what the test serves on
        # its own event loop (the database proxy), which must keep running meanwhile.
        await asyncio.to_thread(group.end)


async def healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the process for {url} exited: {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def start_sandbox(group: Processes) -> str:
    port = _free_port()
    process = group.start(
        "sandbox", "sandbox", "--port", str(port), "--data", str(group.directory / "p.db")
    )
    url = f"http://127.0.0.1:{port}"
    await healthy(f"{url}/pensions/health", process)
    return url


async def queue_mode_with_partners(group: Processes) -> str:
    """Migrate, start the partners (the sandbox, a process of its own) and set every
    hedui process started from now on to queue mode against them; the sandbox's URL."""
    group.run("db", "upgrade")
    sandbox = await start_sandbox(group)
    group.env.update(HEDUI_SANDBOX="off", HEDUI_PARTNER_BASE_URL=sandbox, HEDUI_RUN_MODE="queue")
    return sandbox


async def start_api(group: Processes, name: str) -> str:
    port = _free_port()
    process = group.start(name, "serve", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    await healthy(f"{url}/healthz", process)
    return url


def token(group: Processes) -> str:
    return group.run("apikey", "create", "--role", "caseworker", "--region", "53").split()[-1]


async def queries(sandbox: str) -> dict[str, int]:
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        counts: dict[str, int] = (await client.get(f"{sandbox}/queries")).json()
    return counts


async def held_by_a_hanging_bank(
    client: httpx.AsyncClient, group: Processes, sandbox: str, api: str, auth: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """A worker (`worker1`) running one household whose bank hangs: the worker, and the
    verification's URL."""
    await client.put(f"{sandbox}/faults/bank", json={"mode": "hang"})
    worker = group.start("worker1", "worker")
    accepted = await client.post(f"{api}/v1/verifications", json=household(), headers=auth)
    assert accepted.status_code == 202, accepted.text
    return worker, f"{api}/v1/verifications/{accepted.json()['id']}"


async def status_after(
    client: httpx.AsyncClient, location: str, auth: dict[str, str], *, tries: int
) -> str | None:
    """The verification's status once `completed`, or as it is after `tries` looks 0.1 s
    apart."""
    status = None
    for _ in range(tries):
        status = (await client.get(location, headers=auth)).json()["status"]
        if status == "completed":
            break
        await asyncio.sleep(0.1)
    return status


def household() -> dict[str, object]:
    """One member: then every agency gets exactly one query per verification (some ask
    per member)."""
    return verification_body([member(make_id_number("530103"))], region_code="530103")


async def test_two_apis_and_two_workers_ask_each_source_of_each_verification_once(
    fresh_postgres: str, tmp_path: Path
) -> None:
    """Verifications (100; `HEDUI_TEST_SCALE_OUT_COUNT=500` for #9's full count) through two
    API processes (queue mode) and two workers: every one completes, `Prefer: wait` hears of
    it across processes, each agency is asked exactly once per verification."""
    count = SCALE_OUT_COUNT
    async with processes(tmp_path, {"HEDUI_DATABASE_URL": fresh_postgres}) as group:
        sandbox = await queue_mode_with_partners(group)
        apis = [await start_api(group, f"api{n}") for n in range(2)]
        metrics_ports = [_free_port() for _ in range(2)]
        for n, port in enumerate(metrics_ports):
            group.start(f"worker{n}", "worker", "--concurrency", "8", "--metrics-port", str(port))
        auth = {"Authorization": f"Bearer {token(group)}", "Prefer": "wait=60"}
        limit = asyncio.Semaphore(10)

        async def submit(client: httpx.AsyncClient, index: int) -> httpx.Response:
            async with limit:
                return await client.post(
                    f"{apis[index % 2]}/v1/verifications", json=household(), headers=auth
                )

        async with httpx.AsyncClient(timeout=90, verify=CLIENT_TLS) as client:
            answers = await asyncio.gather(*(submit(client, n) for n in range(count)))
            scraped = [
                (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                for port in metrics_ports
            ]
        counted = await queries(sandbox)

    assert [a.status_code for a in answers] == [200] * count, answers[0].text
    assert {a.json()["status"] for a in answers} == {"completed"}
    assert len({a.json()["id"] for a in answers}) == count
    # Agencies no connector serves (those left for declarative connectors) are never asked.
    assert counted == {source: count if source in SOURCES else 0 for source in counted}
    # Each worker is a scrape target of its own; together they made every bank call. The
    # fleet-wide gauges are the API's.
    bank_calls = 0.0
    for text in scraped:
        assert "hedui_verification_runs_in_flight " in text
        assert 'hedui_connector_breaker_state{connector="bank"} 0.0' in text
        assert "hedui_connector_status" not in text
        assert "hedui_verification_queue_depth" not in text
        assert "_created" not in text
        for outcome in ("ok", "no_record"):
            pattern = rf'hedui_connector_calls_total{{connector="bank",outcome="{outcome}"}} (\S+)'
            found = re.search(pattern, text)
            bank_calls += float(found.group(1)) if found else 0
    assert bank_calls == count


async def test_a_killed_worker_s_run_completes_on_another_without_asking_stored_sources_again(
    fresh_postgres: str, tmp_path: Path
) -> None:
    """kill -9 a worker while the bank is slow: another worker resumes the run once the
    lease expires, asks the bank again (its answer was never stored) and nobody else."""
    env = {"HEDUI_DATABASE_URL": fresh_postgres, "HEDUI_RUN_LEASE_S": "3", "HEDUI_RUN_SWEEP_S": "1"}
    async with processes(tmp_path, env) as group:
        sandbox = await queue_mode_with_partners(group)
        api = await start_api(group, "api")
        auth = {"Authorization": f"Bearer {token(group)}"}
        async with httpx.AsyncClient(timeout=30, verify=CLIENT_TLS) as client:
            first, location = await held_by_a_hanging_bank(client, group, sandbox, api, auth)

            async def sources() -> dict[str, str]:
                body = (await client.get(location, headers=auth)).json()
                return {s["source"]: s["status"] for s in body["sources"]}

            for _ in range(300):  # every source but the bank answered and was stored
                if [s for s, status in (await sources()).items() if status == "pending"] == [
                    "bank"
                ]:
                    break
                await asyncio.sleep(0.1)
            assert (await queries(sandbox))["bank"] == 1

            first.kill()  # SIGKILL: no goodbye, its lease simply stops being renewed
            first.wait()
            await client.put(f"{sandbox}/faults/bank", json={"mode": "ok"})
            group.start("worker2", "worker")
            status = await status_after(client, location, auth, tries=600)
            counted = await queries(sandbox)

    assert status == "completed"
    expected = {source: int(source in SOURCES) for source in counted}
    assert counted == {**expected, "bank": 2}


async def test_a_worker_stopped_with_sigterm_hands_its_run_back_at_once(
    fresh_postgres: str, tmp_path: Path
) -> None:
    """SIGTERM while the bank hangs: the worker interrupts the run and exits at once (it
    waited for the run to end), handing it back, so another worker resumes it long before
    its lease (60 s here) would have run out."""
    env = {
        "HEDUI_DATABASE_URL": fresh_postgres,
        "HEDUI_RUN_LEASE_S": "60",
        "HEDUI_RUN_SWEEP_S": "1",
    }
    async with processes(tmp_path, env) as group:
        sandbox = await queue_mode_with_partners(group)
        api = await start_api(group, "api")
        auth = {"Authorization": f"Bearer {token(group)}"}
        async with httpx.AsyncClient(timeout=30, verify=CLIENT_TLS) as client:
            first, location = await held_by_a_hanging_bank(client, group, sandbox, api, auth)
            for _ in range(300):  # the worker is waiting on the bank
                if (await queries(sandbox))["bank"] == 1:
                    break
                await asyncio.sleep(0.1)
            assert (await queries(sandbox))["bank"] == 1

            stopped = time.monotonic()
            first.send_signal(signal.SIGTERM)
            await asyncio.to_thread(first.wait, 30)
            assert time.monotonic() - stopped < 10  # not the bank's budget, nor the lease
            await client.put(f"{sandbox}/faults/bank", json={"mode": "ok"})
            group.start("worker2", "worker")
            # 30 s: well inside the 60 s lease
            status = await status_after(client, location, auth, tries=300)
    assert status == "completed"


async def test_a_database_restart_under_load_is_survived_and_every_verification_completes(
    fresh_postgres: str, tmp_path: Path
) -> None:
    """Two workers and an API reach PostgreSQL through a proxy the test owns; mid-run the
    proxy drops every connection and refuses new ones for 3 s (what a restart looks like
    from hedui's side). Nobody is restarted: every verification completes, and each agency
    is still asked exactly once per verification."""
    count = 60
    url = make_url(fresh_postgres)
    async with proxied(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        async with processes(tmp_path, {"HEDUI_DATABASE_URL": fresh_postgres}) as group:
            group.run("db", "upgrade")
            auth = {"Authorization": f"Bearer {token(group)}"}
            sandbox = await start_sandbox(group)
            group.env.update(
                HEDUI_DATABASE_URL=through_proxy,
                HEDUI_SANDBOX="off",
                HEDUI_PARTNER_BASE_URL=sandbox,
                HEDUI_RUN_MODE="queue",
                HEDUI_RUN_SWEEP_S="1",
            )
            api = await start_api(group, "api")
            for n in range(2):
                group.start(f"worker{n}", "worker", "--concurrency", "4")
            async with httpx.AsyncClient(timeout=30, verify=CLIENT_TLS) as client:
                await client.put(f"{sandbox}/faults/pensions", json={"latency_ms": 100})
                accepted = [
                    await client.post(f"{api}/v1/verifications", json=household(), headers=auth)
                    for _ in range(count)
                ]
                assert {a.status_code for a in accepted} == {202}, accepted[0].text
                for _ in range(600):  # under way: some answered, most still to come
                    if (await queries(sandbox))["pensions"] >= 10:
                        break
                    await asyncio.sleep(0.05)
                await proxy.cut()
                await asyncio.sleep(3)
                await proxy.restore()

                ids = [a.json()["id"] for a in accepted]
                statuses: dict[str, str] = {}
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and len(statuses) < count:
                    for verification_id in ids:
                        if verification_id in statuses:
                            continue
                        answer = await client.get(
                            f"{api}/v1/verifications/{verification_id}", headers=auth
                        )
                        if answer.status_code == 200 and answer.json()["status"] in (
                            "completed",
                            "failed",
                        ):
                            statuses[verification_id] = answer.json()["status"]
                    await asyncio.sleep(0.2)
                counted = await queries(sandbox)

    assert list(statuses.values()) == ["completed"] * count, statuses
    assert counted == {source: count if source in SOURCES else 0 for source in counted}


async def test_an_api_and_two_workers_on_one_sqlite_file_ask_each_source_once(
    tmp_path: Path,
) -> None:
    """SQLite in queue mode: one API process stores, two workers take the verifications
    from the same file (the rows are the queue); each runs once, each agency asked once."""
    count = 20
    database = f"sqlite+aiosqlite:///{tmp_path / 'hedui.db'}"
    async with processes(tmp_path, {"HEDUI_DATABASE_URL": database}) as group:
        sandbox = await queue_mode_with_partners(group)
        api = await start_api(group, "api")
        for n in range(2):
            group.start(f"worker{n}", "worker", "--concurrency", "4")
        auth = {"Authorization": f"Bearer {token(group)}", "Prefer": "wait=60"}
        async with httpx.AsyncClient(timeout=90, verify=CLIENT_TLS) as client:
            answers = await asyncio.gather(
                *(
                    client.post(f"{api}/v1/verifications", json=household(), headers=auth)
                    for _ in range(count)
                )
            )
        counted = await queries(sandbox)

    assert [a.status_code for a in answers] == [200] * count, answers[0].text
    assert {a.json()["status"] for a in answers} == {"completed"}
    assert counted == {source: count if source in SOURCES else 0 for source in counted}
