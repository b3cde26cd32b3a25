"""All SQL about verifications."""

from datetime import datetime
from typing import Self

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service.models import Decision, IdempotencyKey, SourceResult, Verification


class VerificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)

    def _detailed(self) -> Select[tuple[Verification]]:
        return select(Verification).options(
            selectinload(Verification.members), selectinload(Verification.sources)
        )

    async def get(self, verification_id: str, *, region_prefix: str = "") -> Verification | None:
        statement = (
            self._detailed()
            .where(Verification.id == verification_id)
            .where(Verification.region_code.startswith(region_prefix, autoescape=True))
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(statement)

    async def page(
        self,
        *,
        region_prefix: str,
        reference: str | None,
        status: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Verification]:
        """Newest first; `after` is the (created_at, id) of the last item already seen."""
        statement = self._detailed().where(
            Verification.region_code.startswith(region_prefix, autoescape=True)
        )
        if reference is not None:
            statement = statement.where(Verification.reference == reference)
        if status is not None:
            statement = statement.where(Verification.status == status)
        if after is not None:
            created_at, last_id = after
            statement = statement.where(
                or_(
                    Verification.created_at < created_at,
                    and_(Verification.created_at == created_at, Verification.id < last_id),
                )
            )
        statement = statement.order_by(Verification.created_at.desc(), Verification.id.desc())
        return list(await self.session.scalars(statement.limit(limit)))

    async def unfinished_ids(self) -> list[str]:
        statement = select(Verification.id).where(Verification.status.in_(("queued", "running")))
        return list(await self.session.scalars(statement.order_by(Verification.created_at)))

    async def idempotency_key(self, api_key_id: str, key: str) -> IdempotencyKey | None:
        return await self.session.get(IdempotencyKey, (api_key_id, key))

    async def decisions(self, verification_ids: list[str]) -> dict[str, list[Decision]]:
        if not verification_ids:
            return {}
        rows = await self.session.scalars(
            select(Decision)
            .where(Decision.verification_id.in_(verification_ids))
            .order_by(Decision.decided_at)
        )
        grouped: dict[str, list[Decision]] = {}
        for decision in rows:
            grouped.setdefault(decision.verification_id, []).append(decision)
        return grouped

    async def source_result(self, verification_id: str, source: str) -> SourceResult | None:
        return await self.session.scalar(
            select(SourceResult).where(
                SourceResult.verification_id == verification_id, SourceResult.source == source
            )
        )
