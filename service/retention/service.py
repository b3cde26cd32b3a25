"""The retention purge, one batch at a time; the caller's transaction commits each batch."""

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.actions import RETENTION_PURGE
from service.audit.service import Actor
from service.audit.service import audit as audit_service
from service.models.base import utcnow
from service.retention.repository import RetentionRepository

SYSTEM = Actor(key_id=None, name="hedui retention", role="system", region="")


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=days)


class RetentionService:
    async def due(self, session: AsyncSession, cutoff: datetime) -> int:
        return await RetentionRepository.from_session(session).count_due(cutoff)

    async def purge_batch(
        self,
        session: AsyncSession,
        cutoff: datetime,
        *,
        actor: Actor = SYSTEM,
        limit: int = 500,
    ) -> int:
        """Purge the raw partner records of up to `limit` verifications finished before
        `cutoff`; their reports and decisions stay. Audited. Returns how many."""
        repository = RetentionRepository.from_session(session)
        ids = await repository.due_ids(cutoff, limit)
        if not ids:
            return 0
        await repository.purge(ids, utcnow())
        await audit_service.record(
            session,
            actor,
            RETENTION_PURGE,
            object_type="verification",
            detail=f"raw partner records of {len(ids)} verifications finished before "
            f"{cutoff.date().isoformat()}",
        )
        return len(ids)


retention = RetentionService()
