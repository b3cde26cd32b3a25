"""All SQL about warnings."""

from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, case, func, select, update

from schemas.warning import WarningFilter
from service.auth.principal import Principal
from service.auth.scope import Statement, scoped
from service.models import ChangeWarning, Recheck
from service.pagination import newer_first_after
from service.repository import Repository


def in_scope(statement: Statement, scope: Principal | str) -> Statement:
    """`statement` (over warnings) kept to `scope`'s households."""
    return scoped(statement, scope, ChangeWarning.region_code, ChangeWarning.township_code)


class WarningRepository(Repository):
    @staticmethod
    def place_of(warning_id: str) -> ScalarSelect[str]:
        """The place of a warning's household, as a subquery to write within an audit record
        about it (see `RecipientRepository.place_of`)."""
        return (
            select(func.coalesce(ChangeWarning.township_code, ChangeWarning.region_code))
            .where(ChangeWarning.id == warning_id)
            .scalar_subquery()
        )

    async def add_all(self, warnings: list[ChangeWarning]) -> None:
        self.session.add_all(warnings)
        await self.session.flush()

    async def raised_against(
        self, recipient_id: str, previous_verification_id: str
    ) -> list[ChangeWarning]:
        """The warnings earlier re-checks of the recipient raised against this approved
        verification."""
        return list(
            (
                await self.session.scalars(
                    select(ChangeWarning).where(
                        ChangeWarning.recipient_id == recipient_id,
                        ChangeWarning.previous_verification_id == previous_verification_id,
                    )
                )
            ).all()
        )

    async def get(self, warning_id: str, *, scope: Principal | str) -> ChangeWarning | None:
        return await self.session.scalar(
            in_scope(select(ChangeWarning).where(ChangeWarning.id == warning_id), scope)
        )

    async def page(
        self,
        *,
        scope: Principal | str,
        where: WarningFilter,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[ChangeWarning]:
        """`scope` is the caller's, narrowed by the filter's region and township codes."""
        statement = in_scope(select(ChangeWarning), scope)
        if where.code is not None:
            statement = statement.where(ChangeWarning.code == where.code)
        if where.severity is not None:
            statement = statement.where(ChangeWarning.severity == where.severity)
        if where.status is not None:
            statement = statement.where(ChangeWarning.status == where.status.value)
        if where.recipient_id is not None:
            statement = statement.where(ChangeWarning.recipient_id == where.recipient_id)
        if after is not None:
            statement = statement.where(
                newer_first_after(ChangeWarning.created_at, ChangeWarning.id, after)
            )
        statement = statement.order_by(ChangeWarning.created_at.desc(), ChangeWarning.id.desc())
        return list((await self.session.scalars(statement.limit(limit))).all())

    async def count_in_batches(self, batch_ids: list[str], *, since: datetime) -> int:
        """Warnings raised since `since` by the re-checks of these (re-check) batches."""
        if not batch_ids:
            return 0
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(ChangeWarning)
                .join(Recheck, Recheck.id == ChangeWarning.recheck_id)
                .where(Recheck.batch_id.in_(batch_ids), ChangeWarning.created_at >= since)
            )
            or 0
        )

    async def transition(
        self, warning_id: str, *, from_statuses: tuple[str, ...], values: dict[str, Any]
    ) -> bool:
        result = await self.session.execute(
            update(ChangeWarning)
            .where(ChangeWarning.id == warning_id, ChangeWarning.status.in_(from_statuses))
            .values(**values)
        )
        return bool(getattr(result, "rowcount", 0))

    async def resolve_of_recipient(self, recipient_id: str, *, values: dict[str, Any]) -> int:
        """Resolve every warning of the recipient not resolved yet; how many."""
        result = await self.session.execute(
            update(ChangeWarning)
            .where(
                ChangeWarning.recipient_id == recipient_id,
                ChangeWarning.status.in_(("open", "acknowledged")),
            )
            .values(status="resolved", **values)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def summary(self, *, scope: Principal | str) -> list[tuple[str, int, int, int, int]]:
        def count(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        statement = (
            in_scope(
                select(
                    ChangeWarning.region_code,
                    count(ChangeWarning.status == "open"),
                    count(ChangeWarning.status == "acknowledged"),
                    count(ChangeWarning.status == "resolved"),
                    count(
                        (ChangeWarning.status != "resolved") & (ChangeWarning.severity == "high")
                    ),
                ),
                scope,
            )
            .group_by(ChangeWarning.region_code)
            .order_by(ChangeWarning.region_code)
        )
        rows = await self.session.execute(statement)
        return [
            (r[0], int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows
        ]
