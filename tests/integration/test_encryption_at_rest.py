"""Encryption at rest, as a deployment sees it: what lands in the database file (and in a
`pg_dump`) carries no ID number, name, balance, income, benefit, warning evidence or
webhook secret in the clear, after a verification and after a re-check a year on that
raises a warning and sends it to a webhook; a sealed value moved to another row is
refused, never shown; the blind index keeps lookups working."""

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import StatementError

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.crypto.keyring import Tampered
from service.db import create_engine
from service.models import Member, Report, Verification
from service.recheck.drive import run_until_done
from service.recipient.calendar import add_months
from service.runtime import build_runtime
from service.verification.repository import VerificationRepository
from tests.conftest import (
    CLIENT_TLS,
    LiveService,
    keyed_session_factory,
    running_service,
    service_settings,
)
from tests.factories import make_id_number, member, traces_of_id_number, verification_body
from tests.webhook_receiver import Receiver, receiving

WAIT = {"Prefer": "wait=15"}
BALANCE = "987654.31"
NAMES = ("欧阳锦绣", "司马长风", "诸葛青云")
STAFF = "上官飞燕"
# The re-checked household: modest savings and declared income (so that it is approved),
# then a car a year on.
RECIPIENTS = ("东方明月", "慕容小雪")
SAVINGS = "13579.24"
DECLARED = "271.83"
PLATE = "云A7Q246"
CAR_VALUE = "86420.00"
WEBHOOK_SECRET = "whsec_at_rest_5f1e0c9a7b3d2e4f"
EVENTS = ("verification.completed", "decision.recorded", "warning.raised", "batch.completed")


@pytest.fixture
async def own_service(
    own_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[LiveService, str]]:
    settings = service_settings(own_database_url, tmp_path / "sandbox.db")
    async with running_service(settings) as service:
        yield service, own_database_url


async def _client(
    service: LiveService, database_url: str, role: Role, region: str
) -> httpx.AsyncClient:
    engine = create_engine(database_url)
    factory = await keyed_session_factory(engine)
    async with factory() as session:
        _, token = await create_api_key(session, role=role, region=region)
        await session.commit()
    await engine.dispose()
    return httpx.AsyncClient(
        base_url=service.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )


async def _household(service: LiveService, database_url: str) -> tuple[list[str], dict[str, Any]]:
    """A three-person household with a rich bank account, a registered near relative and an
    idempotent submission; returns the ID numbers and the finished verification."""
    people = [make_id_number("530102") for _ in NAMES]
    caseworker = await _client(service, database_url, Role.caseworker, "53")
    auditor = await _client(service, database_url, Role.auditor, "53")
    async with caseworker, auditor:
        seeded = await caseworker.post(
            "/sandbox/people",
            json={
                "id_number": people[1],
                "bank_accounts": [
                    {"bank": "中国银行", "account": "6216610000009999", "balance": BALANCE}
                ],
            },
        )
        assert seeded.status_code == 200, seeded.text
        registered = await auditor.post(
            "/v1/near-relatives",
            json={
                "region_code": "530102",
                "staff_name": STAFF,
                "staff_position": "民政所所长",
                "relative_id_number": people[2],
                "relative_name": NAMES[2],
                "relationship": "sibling",
            },
        )
        assert registered.status_code == 201, registered.text
        body = verification_body(
            [
                member(
                    person, name, "applicant" if index == 0 else "spouse" if index == 1 else "child"
                )
                for index, (person, name) in enumerate(zip(people, NAMES, strict=True))
            ]
        )
        created = await caseworker.post(
            "/v1/verifications", json=body, headers={**WAIT, "Idempotency-Key": "at-rest-1"}
        )
        assert created.status_code == 200, created.text
        verification = created.json()
        assert verification["status"] == "completed"
        report = await caseworker.get(f"/v1/verifications/{verification['id']}/report")
        assert report.status_code == 200, report.text
        # The near relative was matched through the blind index.
        assert "near_relative" in report.text
        replay = await caseworker.post(
            "/v1/verifications", json=body, headers={"Idempotency-Key": "at-rest-1"}
        )
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json()["id"] == verification["id"]
    return people, verification


def _secrets(people: list[str]) -> list[bytes]:
    values = [*people, *NAMES, STAFF, BALANCE, BALANCE.replace(".", ""), "6216610000009999"]
    return [value.encode() for value in values]


@dataclass
class Office:
    service: LiveService
    database_url: str
    receiver: Receiver
    receiver_url: str


@pytest.fixture
async def office(own_database_url: str, tmp_path: Path) -> AsyncIterator[Office]:
    """A service whose webhooks may go to a receiver served by the test; re-checks only
    when the test runs them."""
    settings = service_settings(
        own_database_url,
        tmp_path / "sandbox.db",
        webhook_hosts="127.0.0.1",
        webhook_poll_s=0.05,
        webhook_backoff_s=0.05,
        recheck_interval_s=0,
        batch_sweep_s=0.1,
    )
    receiver = Receiver(WEBHOOK_SECRET)
    async with receiving(receiver) as receiver_url, running_service(settings) as service:
        yield Office(service, own_database_url, receiver, receiver_url)


async def _eventually(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _rechecked_household(office: Office) -> tuple[list[str], list[str]]:
    """Approve a two-person household, give the child a car in the sandbox, run the due
    re-checks a year on: one warning, sent to the webhook. The household's ID numbers and
    the other values that must not be stored in the clear (benefit included)."""
    service, database_url = office.service, office.database_url
    parent, child = make_id_number("530102"), make_id_number("530102", birth="20100101")
    caseworker = await _client(service, database_url, Role.caseworker, "53")
    approver = await _client(service, database_url, Role.approver, "53")
    integrator = await _client(service, database_url, Role.integrator, "53")
    async with (
        caseworker,
        approver,
        integrator,
        httpx.AsyncClient(base_url=service.base_url, timeout=30, verify=CLIENT_TLS) as sandbox,
    ):
        subscribed = await integrator.post(
            "/v1/webhooks",
            json={"url": office.receiver_url, "events": list(EVENTS), "secret": WEBHOOK_SECRET},
        )
        assert subscribed.status_code == 201, subscribed.text
        seeded = await sandbox.post(
            "/sandbox/people",
            json={
                "id_number": parent,
                "bank_accounts": [
                    {"bank": "农业银行", "account": "6228480000002468", "balance": SAVINGS}
                ],
            },
        )
        assert seeded.status_code == 200, seeded.text
        seeded = await sandbox.post("/sandbox/people", json={"id_number": child})
        assert seeded.status_code == 200, seeded.text
        body = verification_body(
            [
                member(parent, RECIPIENTS[0], "applicant", DECLARED),
                member(child, RECIPIENTS[1], "child"),
            ],
            as_of=None,
        )
        created = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
        assert created.status_code == 200, created.text
        assert created.json()["recommendation"] == "eligible", created.text
        decided = await approver.post(
            f"/v1/verifications/{created.json()['id']}/decision",
            json={"decision": "approve", "reason": "documents checked"},
        )
        assert decided.status_code == 201, decided.text
        [recipient] = (await approver.get("/v1/recipients")).json()["items"]
        benefit = recipient["monthly_benefit"]
        assert benefit not in (None, "0.00")

        car = {"plate": PLATE, "type": "car", "registered_on": "2027-03-01", "value": CAR_VALUE}
        added = await sandbox.post("/sandbox/people", json={"id_number": child, "vehicles": [car]})
        assert added.status_code == 200, added.text
        settings = service.settings.model_copy(
            update={"partner_base_url": f"{service.base_url}/sandbox", "batch_sweep_s": 0}
        )
        async with build_runtime(settings, runs_here=True) as runtime:
            await runtime.health.start(
                runtime.registry, runtime.fetcher.configs, runtime.http_client
            )
            tally = await run_until_done(runtime.rechecks, add_months(date.today(), 12))
        assert (tally.count("queued"), tally.warnings) == (1, 1)

        [warning] = (await caseworker.get("/v1/warnings")).json()["items"]
        assert warning["code"] == "new_vehicle"
        assert PLATE in json.dumps(warning["after"], ensure_ascii=False)  # read back, opened
        assert warning["benefit_before"] == benefit
        await _eventually(lambda: office.receiver.of("warning.raised"))
        assert office.receiver.bad_signatures == 0
    return [parent, child], [*RECIPIENTS, SAVINGS, DECLARED, benefit, PLATE, CAR_VALUE]


def _dump(database_url: str) -> bytes:
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        files = [Path(str(url.database) + suffix) for suffix in ("", "-wal", "-shm")]
        return b"".join(path.read_bytes() for path in files if path.exists())
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        if os.environ.get("HEDUI_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("pg_dump is required to check a PostgreSQL dump")
        pytest.skip("pg_dump is not installed")
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(  # noqa: S603 - a fixed program on the test's own database
        [pg_dump, "--no-owner", dsn], check=True, capture_output=True, timeout=120
    ).stdout


async def test_database_holds_no_id_number_name_or_balance_in_the_clear(office: Office) -> None:
    people, _ = await _household(office.service, office.database_url)
    household, values = await _rechecked_household(office)
    secrets = [
        *_secrets([*people, *household]),
        *(value.encode() for value in (*values, WEBHOOK_SECRET)),
    ]
    # Whatever the service wrote must be on disk (SQLite: file and WAL) or in the dump.
    dump = _dump(office.database_url)
    assert len(dump) > 10_000
    leaked = [secret.decode() for secret in secrets if secret in dump]
    assert leaked == []
    assert b"v1:k1:" in dump  # the values are there, sealed
    # And what went to the webhook carried ids and masked identifiers only.
    sent = b"".join(office.receiver.bodies)
    assert [s.decode() for s in secrets if s in sent] == []


async def test_value_moved_to_another_row_is_refused(own_service: tuple[LiveService, str]) -> None:
    service, database_url = own_service
    people, verification = await _household(service, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            # An insider swaps member 0's sealed ID number and name into member 1's row.
            first = (
                await connection.execute(
                    text(
                        "SELECT id_number_sealed, name_sealed FROM verification_members "
                        "WHERE verification_id = :v AND position = 0"
                    ),
                    {"v": verification["id"]},
                )
            ).one()
            await connection.execute(
                text(
                    "UPDATE verification_members SET id_number_sealed = :i, name_sealed = :n "
                    "WHERE verification_id = :v AND position = 1"
                ),
                {"i": first[0], "n": first[1], "v": verification["id"]},
            )
        factory = await keyed_session_factory(engine)
        async with factory() as session:
            loaded = await VerificationRepository.from_session(session).get(verification["id"])
            assert loaded is not None
            assert loaded.members[0].id_number == people[0]
            with pytest.raises(Tampered):
                _ = loaded.members[1].id_number
            with pytest.raises(Tampered):
                _ = loaded.members[1].name
        auditor = await _client(service, database_url, Role.auditor, "53")
        async with auditor:
            response = await auditor.get(f"/v1/verifications/{verification['id']}")
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "integrity" in response.json()["title"]
        assert traces_of_id_number(people[0], response.text) == []
    finally:
        await engine.dispose()


async def test_report_body_moved_to_another_report_is_refused(
    own_service: tuple[LiveService, str],
) -> None:
    service, database_url = own_service
    _, first = await _household(service, database_url)
    _, second = await _household(service, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE reports SET body_sealed = "
                    "(SELECT body_sealed FROM reports WHERE verification_id = :a) "
                    "WHERE verification_id = :b"
                ),
                {"a": first["id"], "b": second["id"]},
            )
        factory = await keyed_session_factory(engine)
        async with factory() as session:
            intact = await session.get(Report, first["id"])
            moved = await session.get(Report, second["id"])
            assert intact is not None
            assert moved is not None
            assert intact.body["verification_id"] == first["id"]
            with pytest.raises(Tampered):
                _ = moved.body
    finally:
        await engine.dispose()


async def test_orm_writes_are_sealed_and_plaintext_is_refused(
    own_service: tuple[LiveService, str],
) -> None:
    """A row added through the ORM is sealed at flush; plaintext written to a sealed
    column by a Core statement is refused before it reaches the database."""
    service, database_url = own_service
    _, verification = await _household(service, database_url)
    engine = create_engine(database_url)
    try:
        factory = await keyed_session_factory(engine)
        async with factory() as session:
            person = make_id_number("530102")
            session.add(
                Member(
                    verification_id=verification["id"],
                    position=9,
                    id_number=person,
                    name="测试",
                    relation="other",
                    declared_monthly_income=0,
                )
            )
            await session.flush()
            stored = (
                await session.execute(
                    text(
                        "SELECT id_number_sealed, id_number_blind FROM verification_members "
                        "WHERE verification_id = :v AND position = 9"
                    ),
                    {"v": verification["id"]},
                )
            ).one()
            assert stored[0].startswith("v1:k1:")
            assert person not in stored[0]
            assert len(stored[1]) == 64
            await session.rollback()
        async with factory() as session:
            with pytest.raises(StatementError, match="unsealed"):
                await session.execute(
                    update(Member)
                    .where(Member.verification_id == verification["id"])
                    .values(name_sealed="张三")
                )
            assert await session.get(Verification, verification["id"]) is not None
    finally:
        await engine.dispose()
