"""Fixtures for the sandbox agencies: a fresh sandbox per test, backed by its own file."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sandbox import create_sandbox_app
from sandbox.records import Person
from sandbox.state import SandboxState
from sandbox.synthetic import synthetic_person
from tests.sandbox.helpers import FindSynthetic, Seed, valid_id


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.db"


@pytest.fixture
def app(data_path: Path) -> FastAPI:
    return create_sandbox_app(data_path)


@pytest.fixture
def state(app: FastAPI) -> SandboxState:
    sandbox_state: SandboxState = app.state.sandbox
    return sandbox_state


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


@pytest.fixture
def seed(client: httpx.AsyncClient) -> Seed:
    """Seed one person: `await seed(id_number, pension={...})`; fails the test on a non-200."""

    async def _seed(id_number: str, **sections: Any) -> httpx.Response:
        response = await client.post("/people", json={"id_number": id_number, **sections})
        assert response.status_code == 200, response.text
        return response

    return _seed


@pytest.fixture
def synthetic_id() -> FindSynthetic:
    """The first never-seeded ID number whose synthetic records satisfy a predicate."""

    def _find(predicate: Callable[[Person], bool]) -> str:
        for sequence in range(50_000):
            id_number = valid_id(f"360102{1950 + sequence // 1000 % 50}0615{sequence % 1000:03d}")
            person = synthetic_person(id_number)
            if person is not None and predicate(person):
                return id_number
        raise AssertionError("no synthetic person matches")  # pragma: no cover

    return _find
