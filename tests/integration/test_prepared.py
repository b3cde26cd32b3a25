"""Statements sent as prepared text bind their values as `session.execute` does."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.models import Verification
from service.near_relative.repository import NearRelativeRepository
from service.prepared import execute_prepared, rows_prepared
from service.verification.repository import THIS_VERIFICATION, VERIFICATIONS, _unfinished
from tests.stored import store_verification

_LEASE = VERIFICATIONS.c.lease_expires_at
_RENEW = (
    update(VERIFICATIONS)
    .where(VERIFICATIONS.c.id == THIS_VERIFICATION, _unfinished())
    .values(lease_expires_at=bindparam("_until", type_=_LEASE.type))
    .returning(VERIFICATIONS.c.id)
)


async def test_a_prepared_statement_binds_typed_values_and_literals(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The column type's processing (an aware datetime) and the literals bound in the
    statement (the unfinished statuses) go with the text."""
    until = datetime(2026, 11, 26, 8, 30, 15, 123456, tzinfo=UTC)
    async with session_factory() as session:
        verification_id = await store_verification(session, [])
        renewed = await execute_prepared(
            session, _RENEW, {THIS_VERIFICATION.key: verification_id, "_until": until}
        )
        other = await execute_prepared(
            session, _RENEW, {THIS_VERIFICATION.key: "no-such-verification", "_until": until}
        )
        await session.commit()
        stored = await session.scalar(
            select(Verification.lease_expires_at).where(Verification.id == verification_id)
        )
    assert renewed.scalars().all() == [verification_id]
    assert other.scalars().all() == []
    assert stored == until


async def test_prepared_rows_read_each_value_as_its_column_type_does(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """`rows_prepared` gives what `session.execute` gives: a date, an aware datetime (text
    from SQLite until processed), a NULL."""
    until = datetime(2026, 11, 26, 8, 30, 15, 123456, tzinfo=UTC)
    reading = _RENEW.returning(
        VERIFICATIONS.c.as_of, VERIFICATIONS.c.lease_expires_at, VERIFICATIONS.c.care_grade
    )
    async with session_factory() as session:
        verification_id = await store_verification(session, [])
        parameters = {THIS_VERIFICATION.key: verification_id, "_until": until}
        rows = await rows_prepared(session, reading, parameters)
        executed = (await session.execute(reading, parameters)).all()
        await session.rollback()
    assert rows == [tuple(row) for row in executed]
    assert rows == [(verification_id, date(2026, 11, 20), until, None)]


async def test_a_statement_whose_text_changes_with_its_values_is_refused(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    expanding = select(VERIFICATIONS.c.id).where(
        VERIFICATIONS.c.id.in_(bindparam("_ids", expanding=True))
    )
    async with session_factory() as session:
        with pytest.raises(ValueError, match="expanding"):
            await execute_prepared(session, expanding, {"_ids": ["a", "b"]})
        # The near-relative check read by a run's last settle is not such a statement.
        found = await execute_prepared(
            session,
            select(NearRelativeRepository.any_active(2)),
            {"_near_relative_blind_0": "x", "_near_relative_blind_1": "y"},
        )
        assert not found.scalar()
