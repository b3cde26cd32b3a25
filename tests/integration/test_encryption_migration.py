"""A database that predates encryption at rest: `alembic upgrade` seals its rows in place
(with the deployment's key), keeps every lookup working, and leaves no plaintext behind."""

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.person import PersonSearch
from service.auth.principal import Principal, Role
from service.crypto.kek import read_key_file
from service.crypto.store import open_keyring
from service.db import create_engine, create_session_factory, migrate
from service.models import (
    ChangeWarning,
    IdempotencyKey,
    NearRelative,
    Recipient,
    Report,
    Webhook,
)
from service.near_relative.repository import NearRelativeRepository
from service.person.service import person as person_service
from service.verification.repository import VerificationRepository
from tests.conftest import KEY_FILE, _fresh_database
from tests.factories import make_id_number

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database at the schema before encryption at rest (0013)."""
    url, drop = await _fresh_database(request.param, tmp_path)
    engine = create_engine(url)
    await migrate(engine, "0013")
    yield engine
    await engine.dispose()
    if drop is not None:
        await drop()


def _key_and_verifications(connection: Connection, *verification_ids: str) -> dict[str, Table]:
    """The database's tables as they are at its current revision, with the key `key-1`
    and a completed verification for each id written into them."""
    metadata = MetaData()
    metadata.reflect(connection)
    tables: dict[str, Table] = metadata.tables  # type: ignore[assignment]
    connection.execute(
        insert(tables["api_keys"]),
        {
            "id": "key-1",
            "name": "old",
            "role": "caseworker",
            "region_prefix": "53",
            "token_hash": "0" * 64,
            "created_at": NOW,
        },
    )
    connection.execute(
        insert(tables["verifications"]),
        [
            {
                "id": verification_id,
                "reference": "old-case",
                "program": "dibao",
                "region_code": "530102",
                "area": "urban",
                "as_of": date(2026, 11, 20),
                "consent_document_id": "AUTH-1",
                "consent_signed_on": date(2026, 11, 1),
                "status": "completed",
                "created_by": "key-1",
                "created_at": NOW,
            }
            for verification_id in verification_ids
        ],
    )
    return tables


def _plain_rows(connection: Connection, people: list[str]) -> None:
    tables = _key_and_verifications(connection, "ver-1")
    connection.execute(
        insert(tables["verification_members"]),
        [
            {
                "verification_id": "ver-1",
                "position": index,
                "id_number": person,
                "name": name,
                "relation": "applicant" if index == 0 else "spouse",
                "declared_monthly_income": 0,
            }
            for index, (person, name) in enumerate(zip(people, ("慕容复", "王语嫣"), strict=True))
        ],
    )
    connection.execute(
        insert(tables["source_results"]),
        {
            "verification_id": "ver-1",
            "source": "bank",
            "status": "ok",
            "attempts": 1,
            "records": [{"kind": "bank_account", "id_number": people[1], "balance": "765432.19"}],
        },
    )
    connection.execute(
        insert(tables["reports"]),
        {
            "verification_id": "ver-1",
            "body": {"verification_id": "ver-1", "note": "慕容复"},
            "report_hash": "a" * 64,
            "policy_version": "p",
            "policy_hash": "b" * 64,
            "near_relatives": [
                {"id_number": people[1], "staff_position": "x", "relationship": "spouse"}
            ],
            "created_at": NOW,
        },
    )
    connection.execute(
        insert(tables["near_relatives"]),
        {
            "id": "nr-1",
            "region_code": "530102",
            "staff_name": "段正淳",
            "staff_position": "x",
            "relative_id_number": people[1],
            "relative_name": "王语嫣",
            "relationship": "spouse",
            "registered_by": "key-1",
            "registered_at": NOW,
        },
    )
    connection.execute(
        insert(tables["idempotency_keys"]),
        {
            "api_key_id": "key-1",
            "key": "k",
            "request_hash": hashlib.sha256(b"x").hexdigest(),
            "verification_id": "ver-1",
            "created_at": NOW,
        },
    )


def _file_bytes(path: Path) -> bytes:
    return path.read_bytes()


async def test_upgrade_seals_existing_rows_and_lookups_keep_working(
    old_engine: AsyncEngine,
) -> None:
    people = [make_id_number("530102"), make_id_number("530102")]
    async with old_engine.begin() as connection:
        await connection.run_sync(_plain_rows, people)

    kek = read_key_file(KEY_FILE)
    await migrate(old_engine, "head", kek=kek)

    keyring = await open_keyring(old_engine, kek)
    factory = create_session_factory(old_engine, keyring)
    async with factory() as session:
        loaded = await VerificationRepository.from_session(session).get("ver-1")
        assert loaded is not None
        assert [m.id_number for m in loaded.members] == people
        assert [m.name for m in loaded.members] == ["慕容复", "王语嫣"]
        assert loaded.sources[0].records[0]["balance"] == "765432.19"
        report = await session.get(Report, "ver-1")
        assert report is not None
        assert report.body == {"verification_id": "ver-1", "note": "慕容复"}
        assert report.near_relatives[0]["id_number"] == people[1]
        relative = await session.get(NearRelative, "nr-1")
        assert relative is not None
        assert (relative.staff_name, relative.relative_name) == ("段正淳", "王语嫣")
        matches = await NearRelativeRepository.from_session(session).matches([people[1]])
        assert [match.id_number for match in matches] == [people[1]]
        auditor = Principal(key_id="a", name="a", role=Role.auditor, region_prefix="53")
        page = await person_service.verifications(
            session, auditor, PersonSearch(id_number=people[0])
        )
        assert [item.id for item in page.items] == ["ver-1"]
        # The old bare digest became keyed, as new requests' fingerprints are.
        stored = await session.get(IdempotencyKey, ("key-1", "k"))
        assert stored is not None
        digest = hashlib.sha256(b"x").hexdigest()
        assert stored.request_hash == keyring.keyed_hash("request", digest.encode())

    async with old_engine.connect() as connection:
        dumped = json.dumps(
            [
                [list(row) for row in (await connection.execute(text(f"SELECT * FROM {t}"))).all()]  # noqa: S608
                for t in ("verification_members", "source_results", "reports", "near_relatives")
            ],
            default=str,
            ensure_ascii=False,
        )
    for secret in (*people, "慕容复", "王语嫣", "段正淳", "765432.19"):
        assert secret not in dumped
    if old_engine.dialect.name == "sqlite":
        await old_engine.dispose()  # checkpoint the WAL into the file
        raw = _file_bytes(Path(str(old_engine.url.database)))
        for secret in (*people, "慕容复", "王语嫣", "段正淳", "765432.19"):
            assert secret.encode() not in raw, secret


async def test_empty_database_needs_no_key(tmp_path: Path) -> None:
    """A fresh database migrates without any key (nothing to seal), so `db upgrade` works
    before a key is chosen; the keys are made on first open."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        await migrate(engine, "head")
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT COUNT(*) FROM data_keys"))).scalar()
        assert count == 0
        keyring = await open_keyring(engine, read_key_file(KEY_FILE))
        assert keyring.primary == "k1"
        again = await open_keyring(engine, read_key_file(KEY_FILE))
        assert again.blind("x") == keyring.blind("x")
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine_at_0019(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """A database at the schema before declared incomes, benefits, warning evidence and
    webhook secrets were sealed (0019)."""
    url, drop = await _fresh_database(request.param, tmp_path)
    engine = create_engine(url)
    await migrate(engine, "0019")
    yield engine
    await engine.dispose()
    if drop is not None:
        await drop()


INCOME = Decimal("4321.09")
BENEFIT = Decimal("612.34")
HOOK_SECRET = "whsec_before_0020_abcdef0123456789"
EVIDENCE = "vehicle plate=云A9Z876 type=car registered_on=2027-03-01 value=91234.00"


def _rows_at_0019(connection: Connection, keyring: Any, person: str) -> None:
    tables = _key_and_verifications(connection, "ver-1", "ver-2")

    def sealed(table: str, column: str, row: str, value: str) -> str:
        return str(keyring.seal_text(value, table=table, column=column, row=row))

    connection.execute(
        insert(tables["verification_members"]),
        {
            "verification_id": "ver-1",
            "position": 0,
            "id_number_sealed": sealed("verification_members", "id_number", "ver-1/0", person),
            "id_number_blind": keyring.blind(person),
            "name_sealed": sealed("verification_members", "name", "ver-1/0", "慕容复"),
            "relation": "applicant",
            "declared_monthly_income": INCOME,
        },
    )
    connection.execute(
        insert(tables["recipients"]),
        {
            "id": "rec-1",
            "reference": "old-case",
            "program": "dibao",
            "area": "urban",
            "region_code": "530102",
            "recheck_class": "regular",
            "status": "under_review",
            "monthly_benefit": BENEFIT,
            "origin_verification_id": "ver-1",
            "approved_verification_id": "ver-1",
            "approved_on": date(2026, 11, 20),
            "next_recheck_on": date(2027, 11, 20),
            "consent_document_id": "AUTH-1",
            "consent_signed_on": date(2026, 11, 1),
            "created_at": NOW,
            "updated_at": NOW,
        },
    )
    connection.execute(
        insert(tables["rechecks"]),
        {
            "id": "chk-1",
            "recipient_id": "rec-1",
            "due_on": date(2027, 11, 20),
            "region_code": "530102",
            "status": "completed",
            "verification_id": "ver-2",
            "created_at": NOW,
        },
    )
    connection.execute(
        insert(tables["warnings"]),
        {
            "id": "warn-1",
            "recipient_id": "rec-1",
            "recheck_id": "chk-1",
            "verification_id": "ver-2",
            "previous_verification_id": "ver-1",
            "region_code": "530102",
            "code": "new_vehicle",
            "severity": "high",
            "source": "vehicles",
            "member": person[:6] + "********" + person[-4:],
            "before": [],
            "after": [{"source": "vehicles", "member": None, "fact": EVIDENCE}],
            "proposed_action": "stop",
            "benefit_before": BENEFIT,
            "benefit_after": None,
            "changes_eligibility": True,
            "status": "open",
            "created_at": NOW,
        },
    )
    connection.execute(
        insert(tables["webhooks"]),
        {
            "id": "hook-1",
            "url": "https://receiver.example.cn/hook",
            "events": ["warning.raised"],
            "secret": HOOK_SECRET,
            "region_prefix": "53",
            "active": True,
            "created_by": "key-1",
            "created_at": NOW,
        },
    )


async def test_upgrade_seals_incomes_benefits_evidence_and_webhook_secrets(
    engine_at_0019: AsyncEngine,
) -> None:
    person = make_id_number("530102")
    kek = read_key_file(KEY_FILE)
    keyring = await open_keyring(engine_at_0019, kek)
    async with engine_at_0019.begin() as connection:
        await connection.run_sync(_rows_at_0019, keyring, person)

    await migrate(engine_at_0019, "head", kek=kek)

    factory = create_session_factory(engine_at_0019, keyring)
    async with factory() as session:
        loaded = await VerificationRepository.from_session(session).get("ver-1")
        assert loaded is not None
        assert loaded.members[0].declared_monthly_income == INCOME
        assert loaded.members[0].name == "慕容复"
        recipient = await session.get(Recipient, "rec-1")
        assert recipient is not None
        assert recipient.monthly_benefit == BENEFIT
        warning = await session.get(ChangeWarning, "warn-1")
        assert warning is not None
        assert (warning.before, warning.after) == (
            [],
            [{"source": "vehicles", "member": None, "fact": EVIDENCE}],
        )
        assert (warning.benefit_before, warning.benefit_after) == (BENEFIT, None)
        hook = await session.get(Webhook, "hook-1")
        assert hook is not None
        assert hook.secret == HOOK_SECRET

    clear = (str(INCOME), str(BENEFIT), HOOK_SECRET, "云A9Z876", "91234")
    async with engine_at_0019.connect() as connection:
        dumped = json.dumps(
            [
                [list(row) for row in (await connection.execute(text(f"SELECT * FROM {t}"))).all()]  # noqa: S608
                for t in ("verification_members", "recipients", "warnings", "webhooks")
            ],
            default=str,
            ensure_ascii=False,
        )
    assert [value for value in clear if value in dumped] == []
    if engine_at_0019.dialect.name == "sqlite":
        await engine_at_0019.dispose()  # checkpoint the WAL into the file
        raw = _file_bytes(Path(str(engine_at_0019.url.database)))
        assert [value for value in clear if value.encode() in raw] == []
