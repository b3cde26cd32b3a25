"""All SQL about the audit trail. Nothing here updates or deletes a row: the three tables
are insert-only, and the database role of the application may be limited to that."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, or_, select, text
from sqlalchemy.sql.elements import ClauseElement

from service.auth.scope import condition
from service.models import AuditChainLink, AuditCheckpoint, AuditEvent
from service.repository import Repository

CHAIN_LOCK = 0x6865647561  # "hedua": one chainer at a time on PostgreSQL
AUDIT_EVENTS = cast(Table, AuditEvent.__table__)
_INSERT = insert(AUDIT_EVENTS)
"""An event with plain values: one statement, built once."""
RECENT_WINDOW = 10_000
"""Unchained events are looked for among ids above the newest chained one minus this: a
transaction that commits its event late is still found, without scanning the whole table."""


class AuditRepository(Repository):
    async def insert(self, **values: Any) -> None:
        """One event, by a Core INSERT: the trail is insert-only and nothing reads the row
        back, so the ORM's unit of work (a third of a recorded request's database cost)
        has nothing to track."""
        if any(isinstance(value, ClauseElement) for value in values.values()):
            # A value read by the statement itself (the place of the verification it is
            # about): a statement of its own.
            await self.session.execute(insert(AuditEvent).values(**values))
        else:
            await self.session.execute(_INSERT, values)

    async def read_one_moment(self) -> None:
        """Every read of this transaction from here on sees the trail as of one moment
        (call it first): chaining commits links with their checkpoint, and a reader whose
        statements each saw the latest commit could read the links and miss the checkpoint.
        PostgreSQL: REPEATABLE READ. SQLite: a read outside a transaction is its own, so one
        is begun (WAL gives it a snapshot from its first read)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        else:
            await self.session.execute(text("BEGIN"))

    async def try_chain_lock(self) -> bool:
        """PostgreSQL: this transaction becomes the only chainer, or returns False. SQLite
        has one writer at a time anyway; a link inserted twice fails on its primary key."""
        if self.session.get_bind().dialect.name != "postgresql":
            return True
        locked = await self.session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK}
        )
        return bool(locked)

    async def head(self) -> AuditChainLink | None:
        return await self.session.scalar(
            select(AuditChainLink).order_by(AuditChainLink.seq.desc()).limit(1)
        )

    async def link(self, seq: int) -> AuditChainLink | None:
        return await self.session.get(AuditChainLink, seq)

    async def event_at(self, event_id: int) -> datetime | None:
        return await self.session.scalar(select(AuditEvent.at).where(AuditEvent.id == event_id))

    async def unchained(self, *, after_event_id: int, limit: int) -> Sequence[AuditEvent]:
        statement = (
            select(AuditEvent)
            .outerjoin(AuditChainLink, AuditChainLink.event_id == AuditEvent.id)
            .where(AuditChainLink.seq.is_(None), AuditEvent.id > after_event_id)
            .order_by(AuditEvent.id)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def add_links(self, links: list[AuditChainLink]) -> None:
        self.session.add_all(links)
        await self.session.flush()

    async def last_checkpoint(self) -> AuditCheckpoint | None:
        return await self.session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
        )

    async def add_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        self.session.add(checkpoint)
        await self.session.flush()

    async def links(self, *, after_seq: int, limit: int) -> Sequence[AuditChainLink]:
        statement = (
            select(AuditChainLink)
            .where(AuditChainLink.seq > after_seq)
            .order_by(AuditChainLink.seq)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def events_by_id(self, ids: Sequence[int]) -> dict[int, AuditEvent]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(AuditEvent).where(AuditEvent.id.in_(ids)))
        return {row.id: row for row in rows}

    async def checkpoints(self) -> Sequence[AuditCheckpoint]:
        return (
            await self.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
        ).all()

    async def stray_events(self, *, before: datetime, limit: int) -> Sequence[int]:
        """Events older than `before` that no link covers: never chained, or unlinked."""
        statement = (
            select(AuditEvent.id)
            .outerjoin(AuditChainLink, AuditChainLink.event_id == AuditEvent.id)
            .where(AuditChainLink.seq.is_(None), AuditEvent.at < before)
            .order_by(AuditEvent.id)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def count_events(self) -> int:
        return int(await self.session.scalar(select(func.count(AuditEvent.id))) or 0)

    async def page(
        self,
        *,
        region_prefix: str,
        actor_key_id: str | None,
        action: str | None,
        object_ids: Sequence[str] | None,
        object_id: str | None,
        since: datetime | None,
        until: datetime | None,
        before_id: int | None,
        limit: int,
        subject_blind: str | None = None,
    ) -> Sequence[AuditEvent]:
        """Newest first; `before_id` is the last id already seen. In `region_prefix`: events
        about a household there (`object_region` holds its township code, else its county's
        region code), and events of actors scoped there about nothing regional."""
        statement = select(AuditEvent)
        about_household = condition(region_prefix, AuditEvent.object_region)
        by_actor = condition(region_prefix, AuditEvent.region)
        if about_household is not None and by_actor is not None:
            statement = statement.where(
                or_(about_household, and_(AuditEvent.object_region.is_(None), by_actor))
            )
        if actor_key_id is not None:
            statement = statement.where(AuditEvent.actor_key_id == actor_key_id)
        if action is not None:
            statement = statement.where(AuditEvent.action == action)
        if subject_blind is not None:
            # About one of `object_ids` (their households), or about the person themself.
            statement = statement.where(
                or_(
                    AuditEvent.object_id.in_(object_ids or ()),
                    AuditEvent.subject_blind == subject_blind,
                )
            )
        elif object_ids is not None:
            statement = statement.where(AuditEvent.object_id.in_(object_ids))
        if object_id is not None:
            statement = statement.where(AuditEvent.object_id == object_id)
        if since is not None:
            statement = statement.where(AuditEvent.at >= since)
        if until is not None:
            statement = statement.where(AuditEvent.at < until)
        if before_id is not None:
            statement = statement.where(AuditEvent.id < before_id)
        statement = statement.order_by(AuditEvent.id.desc()).limit(limit)
        return (await self.session.scalars(statement)).all()
