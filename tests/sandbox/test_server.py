"""The sandbox as deployed: over real HTTP, mounted inside another app, run by `run()`."""

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from sandbox import create_sandbox_app, server
from sandbox.state import SandboxState
from tests.conftest import CLIENT_TLS
from tests.sandbox.helpers import ALICE

PENSION = {"status": "receiving", "monthly_amount": "1200.00"}
REQUEST = {"seq": 1, "sfzh": ALICE}


@pytest.fixture
async def live_sandbox(app: FastAPI) -> AsyncIterator[str]:
    """The sandbox served by uvicorn on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none")
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve(sockets=[sock]))
    while not uvicorn_server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    await task
    sock.close()


async def test_a_hung_call_is_released_when_the_client_times_out(
    live_sandbox: str, state: SandboxState
) -> None:
    async with httpx.AsyncClient(base_url=live_sandbox, timeout=0.2, verify=CLIENT_TLS) as client:
        await client.put("/faults/pensions", json={"mode": "hang"})

        with pytest.raises(httpx.ReadTimeout):
            await client.post("/pensions/batch", json={"requests": []})
        assert state.faults.hanging == 1

    for _ in range(100):  # the server notices the closed connection within a few ms
        if state.faults.hanging == 0:
            break
        await asyncio.sleep(0.01)
    assert state.faults.hanging == 0


async def test_agencies_answer_over_http(live_sandbox: str) -> None:
    async with httpx.AsyncClient(base_url=live_sandbox, timeout=2, verify=CLIENT_TLS) as client:
        response = await client.post("/housing_fund/account/query", data={"zjhm": ALICE})

    assert response.status_code == 200
    assert response.json()["ret"] in {"0000", "0404"}


async def test_the_sandbox_works_mounted_under_a_prefix() -> None:
    service = FastAPI()
    service.mount("/sandbox", create_sandbox_app())
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url="http://hedui") as client:
        seeded = await client.post("/sandbox/people", json={"id_number": ALICE, "pension": PENSION})
        found = await client.post("/sandbox/pensions/batch", json={"requests": [REQUEST]})
        await client.put("/sandbox/faults/pensions", json={"mode": "down"})
        down = await client.post("/sandbox/pensions/batch", json={"requests": [REQUEST]})
        healthy = await client.get("/sandbox/bank/health")

    assert seeded.status_code == 200
    assert found.json()["results"] == [{"seq": 1, "found": True, **PENSION}]
    assert down.status_code == 503
    assert healthy.json() == {"state": "UP"}


def test_run_defaults_to_a_persistent_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    served: dict[str, object] = {}
    monkeypatch.setattr(
        server.uvicorn, "run", lambda app, **options: served.update(app=app, **options)
    )
    monkeypatch.setenv("HEDUI_SANDBOX_DATA", str(tmp_path / "from-env.db"))

    server.run(port=8123)

    assert served["port"] == 8123
    assert served["host"] == "127.0.0.1"
    assert (tmp_path / "from-env.db").exists()
