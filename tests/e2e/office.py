"""A county office over real HTTP and the sandbox agencies: its service, a caseworker's and
an approver's clients, and `hedui recheck` as an operator runs it; the fixture of the tests
of re-checks and of changes of household (`tests/e2e/conftest.py` offers it to them)."""

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import select
from typer.testing import CliRunner

from service import cli
from service.db import create_engine, create_session_factory
from service.models import AuditEvent, OutboxEvent
from service.recipient.calendar import add_months
from tests.conftest import CLIENT_TLS, LiveService, running_service, service_settings
from tests.factories import member, verification_body
from tests.stored import api_tokens

WAIT = {"Prefer": "wait=15"}
CONSENT_LIMITED = "530125"
"""A county whose (test) policy file limits an authorization to 12 months."""


@dataclass(frozen=True)
class Ran:
    """What a run of the command line ended with and printed."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """The logging of this process as it was before: a command configures its own (warnings
    only, meanwhile), and the service under test goes on in this process."""
    root = logging.getLogger()
    level, handlers, config = root.level, list(root.handlers), structlog.get_config()
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
        structlog.configure(**config)


@dataclass
class Office:
    """A county office: its service, and a caseworker's and an approver's clients."""

    service: LiveService
    sandbox: httpx.AsyncClient
    caseworker: httpx.AsyncClient
    approver: httpx.AsyncClient
    env: dict[str, str]

    def today(self) -> date:
        """The service's day (its time zone, not UTC's): withdrawals are dated by it."""
        return self.service.settings.today()

    async def recheck(
        self, *args: str, own_process: bool = False, env: dict[str, str] | None = None
    ) -> Ran:
        """`hedui recheck --due *args` with the office's settings: in a process of its own
        when `own_process`, else through the same command-line app in a thread of this one
        (its own event loop; a second of start-up less a call), as the operator's output."""
        command = ["recheck", "--due", *args]
        if own_process:
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "service.cli", *command],
                env={**os.environ, **self.env, **(env or {})},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            return Ran(done.returncode, done.stdout, done.stderr)
        with _logging_kept():
            result = await asyncio.to_thread(
                CliRunner().invoke,
                cli.app,
                command,
                env={**self.env, **(env or {})},
                catch_exceptions=False,
            )
        return Ran(result.exit_code, result.stdout, result.stderr)

    async def approve(self, region: str, *people: dict[str, Any]) -> str:
        """Verify `people`'s household (see `verify`) and approve it."""
        verification_id = await self.verify(region, *people)
        decided = await self.decide(verification_id, "approve")
        assert decided.status_code == 201, decided.text
        return verification_id

    async def verify(self, region: str, *people: dict[str, Any], program: str = "dibao") -> str:
        """Seed `people` with the partners (a person's `declared` income is the
        application's, not a partner's) and verify their household, found eligible."""
        for person in people:
            partners_know = {
                key: value for key, value in person.items() if key not in ("declared", "name")
            }
            seeded = await self.sandbox.post("/sandbox/people", json=partners_know)
            assert seeded.status_code < 300, seeded.text
        body = verification_body(
            [
                member(
                    p["id_number"],
                    name=p.get("name", "张三"),
                    relation="applicant" if i == 0 else "child",
                    declared=p.get("declared", 0),
                )
                for i, p in enumerate(people)
            ],
            region_code=region,
            program=program,
            as_of=None,
        )
        created = await self.caseworker.post("/v1/verifications", json=body, headers=WAIT)
        assert created.status_code == 200, created.text
        assert created.json()["recommendation"] == "eligible"
        verification_id: str = created.json()["id"]
        return verification_id

    async def decide(self, verification_id: str, decision: str) -> httpx.Response:
        """The approver's `decision` (approve, reject, return) on the verification."""
        return await self.approver.post(
            f"/v1/verifications/{verification_id}/decision",
            json={"decision": decision, "reason": "documents checked"},
        )


@pytest.fixture
async def office(own_database_url: str, tmp_path: Path) -> AsyncIterator[Office]:
    policies = tmp_path / "policy"
    policies.mkdir()
    (policies / f"{CONSENT_LIMITED}.toml").write_text(
        '[[versions]]\nprogram = "dibao"\narea = "urban"\neffective_from = 2019-01-01\n'
        "consent_valid_months = 3\n"
        '[[versions]]\nprogram = "dibao"\narea = "urban"\neffective_from = 2020-06-01\n'
        "consent_valid_months = 12\n",
        encoding="utf-8",
    )
    settings = service_settings(
        own_database_url,
        tmp_path / "sandbox.db",
        policy_dir=policies,
        recheck_interval_s=0,
        webhook_hosts="127.0.0.1",  # a test may subscribe, to read what would be sent
    )
    tokens = await api_tokens(own_database_url, "caseworker", "approver", named="Panlong")
    async with running_service(settings) as service:
        env = {
            "HEDUI_DATABASE_URL": own_database_url,
            "HEDUI_PARTNER_BASE_URL": f"{service.base_url}/sandbox",
            "HEDUI_POLICY_DIR": str(policies),
            "HEDUI_CONNECTOR_TIMEOUT_S": "5",
        }

        async with (
            httpx.AsyncClient(base_url=service.base_url, timeout=30, verify=CLIENT_TLS) as sandbox,
            bearer_client(service.base_url, tokens["caseworker"]) as caseworker,
            bearer_client(service.base_url, tokens["approver"]) as approver,
        ):
            yield Office(service, sandbox, caseworker, approver, env)


def bearer_client(base_url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )


def a_year_on() -> date:
    return add_months(date.today(), 12)


async def rechecks_of(office: Office, origin: str) -> list[dict[str, Any]]:
    """The re-check verifications of the household first verified as `origin`, oldest first."""
    listed = (await office.caseworker.get("/v1/verifications", params={"limit": 200})).json()
    ids = [item["id"] for item in listed["items"] if item["id"] != origin]
    read = [(await office.caseworker.get(f"/v1/verifications/{i}")).json() for i in ids]
    return sorted(read, key=lambda verification: verification["created_at"])


async def audit_events(database_url: str, action: str) -> list[AuditEvent]:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            return list(
                await session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )
    finally:
        await engine.dispose()


async def outbox_data(database_url: str, event_type: str) -> list[dict[str, Any]]:
    """The `data` the webhooks subscribed to `event_type` were (or will be) sent, oldest
    first."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            return [
                payload["data"]
                for payload in await session.scalars(
                    select(OutboxEvent.payload)
                    .where(OutboxEvent.type == event_type)
                    .order_by(OutboxEvent.created_at, OutboxEvent.id)
                )
            ]
    finally:
        await engine.dispose()
