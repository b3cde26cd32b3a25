"""`each_statement_commits`: on PostgreSQL a statement's change is committed as it runs
(no BEGIN, no COMMIT round trip); on SQLite the session keeps its transaction."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import each_statement_commits
from service.models import Verification
from service.verification.repository import VerificationRepository
from tests.stored import store_verification


async def test_a_claim_is_committed_as_it_runs_on_postgresql_only(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        verification_id = await store_verification(session, [("pensions", "1")])
        await session.commit()
    now = datetime.now(UTC)

    async with session_factory() as session:
        await each_statement_commits(session)
        claimed = await VerificationRepository.from_session(session).claim(
            verification_id, "worker-a", now, now + timedelta(minutes=1)
        )
        async with session_factory() as elsewhere:
            seen = await elsewhere.scalar(
                select(Verification.lease_owner).where(Verification.id == verification_id)
            )
        postgresql = session.get_bind().dialect.name == "postgresql"
        await session.rollback()  # nothing left to undo on PostgreSQL

    async with session_factory() as session:
        kept = await session.scalar(
            select(Verification.lease_owner).where(Verification.id == verification_id)
        )
    assert claimed
    assert seen == ("worker-a" if postgresql else None)
    assert kept == ("worker-a" if postgresql else None)
