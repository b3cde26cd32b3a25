"""The sandbox's control endpoints take no token, so they are never served by accident.

With the old default (`HEDUI_SANDBOX=on`) anyone who could reach the API could plant
"partner" data (`POST /sandbox/people`) and inject faults. Now `auto` (the default) serves
the sandbox only on a loopback address with SQLite; `on` forces it, with a warning.
"""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.config import Settings, is_loopback
from tests.conftest import CLIENT_TLS
from tests.factories import make_id_number
from tests.integration.test_request_limits import free_port, serving


def settings_for(database_url: str, tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        database_url=database_url,
        sandbox_data=tmp_path / "sandbox.db",
        **changes,
    )


async def sandbox_answers(base_url: str) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, verify=CLIENT_TLS) as client:
        seeded = await client.post("/sandbox/people", json={"id_number": make_id_number()})
        faulted = await client.put("/sandbox/faults/bank", json={"mode": "down"})
        healthy = await client.get("/healthz")
    assert healthy.status_code == 200
    return [seeded.status_code, faulted.status_code]


async def test_auto_serves_the_sandbox_only_with_sqlite(
    database_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """On a loopback address: mounted (with a warning) on SQLite, absent on PostgreSQL."""
    settings = settings_for(database_url, tmp_path, sandbox="auto", host="127.0.0.1")
    async with serving(settings) as base_url:
        answers = await sandbox_answers(base_url)
    logged = "".join(capfd.readouterr())
    if database_url.startswith("sqlite"):
        assert answers == [200, 200]
        assert "sandbox_mounted" in logged
    else:
        assert answers == [404, 404]
        assert "sandbox_mounted" not in logged


async def test_auto_leaves_the_sandbox_out_when_bound_beyond_loopback(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, sandbox="auto", host="0.0.0.0")  # noqa: S104
    async with serving(settings) as base_url:
        assert await sandbox_answers(base_url) == [404, 404]


async def test_on_forces_the_sandbox_with_a_warning(
    database_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(database_url, tmp_path, sandbox="on", host="0.0.0.0")  # noqa: S104
    async with serving(settings) as base_url:
        answers = await sandbox_answers(base_url)
    assert answers == [200, 200]
    assert "sandbox_mounted" in "".join(capfd.readouterr())


async def test_hedui_serve_on_every_interface_serves_no_sandbox(tmp_path: Path) -> None:
    """The command as an operator runs it, with the defaults: `--host 0.0.0.0`, SQLite."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HEDUI_SANDBOX", "HEDUI_PARTNER_BASE_URL")
    }
    env |= {
        "HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hedui.db'}",
        "HEDUI_SANDBOX_DATA": str(tmp_path / "sandbox.db"),
    }
    # Our own CLI with fixed arguments, polled below rather than waited on.
    process = subprocess.Popen(  # noqa: S603, ASYNC220
        [sys.executable, "-m", "service.cli", "serve", "--host", "0.0.0.0", "--port", str(port)],  # noqa: S104
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, verify=CLIENT_TLS) as client:
            for _ in range(300):
                assert process.poll() is None, "hedui serve exited during start-up"
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        assert await sandbox_answers(base_url) == [404, 404]
    finally:
        process.terminate()
        _, stderr = await asyncio.to_thread(process.communicate, timeout=15)
    assert "sandbox_mounted" not in stderr
    assert "partners_unset" in stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),  # noqa: S104
        ("::", False),
        ("10.0.0.5", False),
        ("hedui.example", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
