"""Rows of several tables inserted together (`service.bulk`): on PostgreSQL one statement,
on SQLite one executemany per table; on both, the rows and defaults an INSERT per table
would have stored, all of them or none."""

from datetime import UTC, date, datetime
from typing import cast

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.bulk import Rows, insert_together
from service.models import AuditEvent, Member, Report, Verification
from service.verification.repository import VerificationRepository
from tests.stored import store_verification

VERIFICATIONS = cast(Table, Verification.__table__)
MEMBERS = cast(Table, Member.__table__)
AUDIT = cast(Table, AuditEvent.__table__)


async def _key(session_factory: async_sessionmaker[AsyncSession]) -> str:
    async with session_factory() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="53")
        await session.commit()
    return key.id


def _verification(verification_id: str, reference: str, key_id: str) -> dict[str, object]:
    return {
        "id": verification_id,
        "reference": reference,
        "program": "dibao",
        "region_code": "530103",
        "area": "urban",
        "as_of": date(2026, 11, 26),
        "consent_document_id": "consent-1",
        "consent_signed_on": date(2026, 11, 20),
        "created_by": key_id,
        "created_at": datetime(2026, 11, 26, 8, 0, tzinfo=UTC),
    }


def _event(action: str) -> dict[str, object]:
    return {
        "actor_key_id": "key-1",
        "actor_name": "caseworker",
        "role": "caseworker",
        "region": "53",
        "action": action,
        "object_type": "verification",
        "object_id": None,
        "object_region": None,
        "request_id": None,
        "outcome": "ok",
        "detail": None,
    }


async def test_rows_of_several_tables_commit_together_with_their_defaults(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    ids = [f"bulk-{index}-{datetime.now(UTC).timestamp()}" for index in range(3)]
    key_id = await _key(session_factory)
    async with session_factory() as session:
        await insert_together(
            session,
            [
                Rows(VERIFICATIONS, [_verification(id_, f"ref-{id_}", key_id) for id_ in ids]),
                Rows(AUDIT, [_event(f"bulk.{id_}") for id_ in ids]),
                Rows(MEMBERS, []),  # nothing to insert: left out
            ],
            commit=True,
        )
        assert not session.in_transaction()

    async with session_factory() as session:
        stored = (
            await session.execute(
                select(Verification.id, Verification.status, Verification.awaiting)
                .where(Verification.id.in_(ids))
                .order_by(Verification.id)
            )
        ).all()
        events = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.at).where(
                    AuditEvent.action.in_([f"bulk.{id_}" for id_ in ids])
                )
            )
        ).all()
    # `status` has a Python-side default, `awaiting` the database's; `at` a callable.
    assert [(row.id, row.status, row.awaiting) for row in stored] == [
        (id_, "queued", 0) for id_ in sorted(ids)
    ]
    assert sorted(event.action for event in events) == sorted(f"bulk.{id_}" for id_ in ids)
    assert all(event.at is not None for event in events)


async def test_a_row_that_fails_leaves_nothing_of_any_table(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    id_ = f"bulk-failing-{datetime.now(UTC).timestamp()}"
    key_id = await _key(session_factory)
    member = {
        "verification_id": "no-such-verification",
        "position": 0,
        "id_number_sealed": None,
        "id_number_blind": "blind",
        "name_sealed": None,
        "relation": "self",
        "declared_monthly_income_sealed": None,
    }
    async with session_factory() as session:
        with pytest.raises(IntegrityError):
            await insert_together(
                session,
                [
                    Rows(VERIFICATIONS, [_verification(id_, f"ref-{id_}", key_id)]),
                    Rows(AUDIT, [_event(f"bulk.{id_}")]),
                    Rows(MEMBERS, [member]),  # its verification does not exist
                ],
                commit=True,
            )
        await session.rollback()

    async with session_factory() as session:
        assert await session.scalar(select(func.count()).where(Verification.id == id_)) == 0
        assert (
            await session.scalar(select(func.count()).where(AuditEvent.action == f"bulk.{id_}"))
            == 0
        )


async def test_rows_that_differ_in_columns_are_refused_before_any_statement(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        with pytest.raises(ValueError, match="different columns"):
            await insert_together(session, [Rows(AUDIT, [_event("a"), {"action": "b"}])])
        with pytest.raises(ValueError, match="no column nonsense"):
            await insert_together(session, [Rows(AUDIT, [_event("a") | {"nonsense": 1}])])
        assert not session.in_transaction()


async def test_a_report_goes_in_only_with_the_end_of_its_verification(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def report(text: str) -> dict[str, object]:
        return {
            "verification_id": verification_id,
            "body": {"text": text},
            "report_hash": text,
            "policy_version": "1",
            "policy_hash": "h",
            "near_relatives": [],
            "created_at": now,
        }

    async with session_factory() as session:
        verification_id = await store_verification(session, [("pensions", "1")])
        repository = VerificationRepository.from_session(session)
        first = await repository.finish(
            verification_id, status="completed", completed_at=now, report=report("first")
        )
        # A duplicate run ends it again: nothing changes, its report is not stored (a
        # second INSERT would fail on the primary key).
        second = await repository.finish(
            verification_id, status="failed", completed_at=now, report=report("second")
        )
        await session.commit()
    assert first == ()
    assert second is None
    async with session_factory() as session:
        hashes = list(
            await session.scalars(
                select(Report.report_hash).where(Report.verification_id == verification_id)
            )
        )
        status = await session.scalar(
            select(Verification.status).where(Verification.id == verification_id)
        )
    assert hashes == ["first"]
    assert status == "completed"
