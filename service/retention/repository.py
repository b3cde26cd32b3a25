"""All SQL of the retention purge."""

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, func, select, update

from service.crypto.sealed import keyring_of, sealed_values
from service.models import SourceResult, Verification
from service.recipient.repository import approved_on_the_roll
from service.repository import Repository

SOURCE_RESULTS = cast(Table, SourceResult.__table__)


class RetentionRepository(Repository):
    async def count_due(self, cutoff: datetime) -> int:
        statement = select(func.count(Verification.id)).where(*_due(cutoff))
        return int(await self.session.scalar(statement) or 0)

    async def due_ids(self, cutoff: datetime, limit: int) -> Sequence[str]:
        """Finished verifications older than `cutoff` whose records are still kept and
        serve no household on the roll. With SKIP LOCKED on PostgreSQL, two purges at once
        take different verifications."""
        statement = (
            select(Verification.id)
            .where(*_due(cutoff))
            .order_by(Verification.completed_at)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        return (await self.session.scalars(statement)).all()

    async def purge(self, verification_ids: Sequence[str], now: datetime) -> None:
        """Empty the raw records of these verifications' sources and mark them purged."""
        # Each source's empty list is sealed for its own row, like any stored records.
        keyring = keyring_of(self.session)
        sources = await self.session.execute(
            select(
                SOURCE_RESULTS.c.id, SOURCE_RESULTS.c.verification_id, SOURCE_RESULTS.c.source
            ).where(SOURCE_RESULTS.c.verification_id.in_(verification_ids))
        )
        emptied = [
            {"row_id": row_id}
            | sealed_values(
                SourceResult, keyring, {"verification_id": owner, "source": source}, records=[]
            )
            for row_id, owner, source in sources
        ]
        if emptied:
            await self.session.execute(
                update(SOURCE_RESULTS)
                .where(SOURCE_RESULTS.c.id == bindparam("row_id"))
                .values(records_sealed=bindparam("records_sealed")),
                emptied,
            )
        await self.session.execute(
            update(Verification)
            .where(Verification.id.in_(verification_ids))
            .values(records_purged_at=now)
            .execution_options(synchronize_session=False)
        )


def _due(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    """Whose records the purge takes: finished before `cutoff`, kept so far, and not what
    a household on the roll is re-checked against (its approved verification: a re-check
    compares its records with that one's, record by record, for as long as the household
    is on the roll; once it has left, or a later approval has taken that place, they go)."""
    return (
        Verification.completed_at < cutoff,
        Verification.records_purged_at.is_(None),
        ~approved_on_the_roll(Verification.id),
    )
