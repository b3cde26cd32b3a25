"""All SQL of the retention purge."""

from collections.abc import Sequence
from datetime import datetime
from typing import Self

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import SourceResult, Verification


class RetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)

    async def count_due(self, cutoff: datetime) -> int:
        statement = select(func.count(Verification.id)).where(
            Verification.completed_at < cutoff, Verification.records_purged_at.is_(None)
        )
        return int(await self.session.scalar(statement) or 0)

    async def due_ids(self, cutoff: datetime, limit: int) -> Sequence[str]:
        """Finished verifications older than `cutoff` whose records are still kept. With
        SKIP LOCKED on PostgreSQL, two purges at once take different verifications."""
        statement = (
            select(Verification.id)
            .where(Verification.completed_at < cutoff, Verification.records_purged_at.is_(None))
            .order_by(Verification.completed_at)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        return (await self.session.scalars(statement)).all()

    async def purge(self, verification_ids: Sequence[str], now: datetime) -> None:
        """Empty the raw records of these verifications' sources and mark them purged."""
        await self.session.execute(
            update(SourceResult)
            .where(SourceResult.verification_id.in_(verification_ids))
            .values(records=[])
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(Verification)
            .where(Verification.id.in_(verification_ids))
            .values(records_purged_at=now)
            .execution_options(synchronize_session=False)
        )
