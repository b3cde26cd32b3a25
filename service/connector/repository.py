"""All SQL about connector state, events, call buckets and dashboard sessions."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from schemas.connector import BreakerState, Pause
from service.connector.stats import Bucket
from service.models import ConnectorBucket, ConnectorEvent, ConnectorState, DashboardSession
from service.pagination import newer_first_after
from service.repository import Repository


class ConnectorRepository(Repository):
    async def states(self, names: Sequence[str]) -> dict[str, ConnectorState]:
        rows = await self.session.scalars(
            select(ConnectorState).where(ConnectorState.name.in_(names))
        )
        return {row.name: row for row in rows}

    async def state(self, name: str) -> ConnectorState | None:
        return await self.session.get(ConnectorState, name)

    async def ensure(self, names: Sequence[str], now: datetime) -> dict[str, ConnectorState]:
        """Every connector's row, created where missing (another process may race us: the
        caller retries on an integrity error)."""
        existing = await self.states(names)
        for name in names:
            if name not in existing:
                row = ConnectorState(
                    name=name,
                    breaker=BreakerState.closed,
                    breaker_open_s=0.0,
                    breaker_version=0,
                    paused=False,
                    updated_at=now,
                )
                self.session.add(row)
                existing[name] = row
        await self.session.flush()
        return existing

    async def write_breaker(
        self,
        name: str,
        *,
        expected_version: int,
        state: BreakerState,
        until: datetime | None,
        open_s: float,
        now: datetime,
    ) -> bool:
        """Compare-and-set: False when another process changed the breaker first."""
        result = await self.session.execute(
            update(ConnectorState)
            .where(ConnectorState.name == name, ConnectorState.breaker_version == expected_version)
            .values(
                breaker=state,
                breaker_until=until,
                breaker_open_s=open_s,
                breaker_version=expected_version + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def set_pause(self, name: str, pause: Pause | None, now: datetime) -> bool:
        """Pause (`pause` given) or resume `name` unless it already is: one conditional
        UPDATE, so of two operators at the same moment exactly one changes it (the other's
        UPDATE waits for the first's row lock, then finds nothing to change). False when
        nothing changed."""
        paused = pause is not None
        result = await self.session.execute(
            update(ConnectorState)
            .where(
                ConnectorState.name == name,
                ConnectorState.paused.is_not(True) if paused else ConnectorState.paused.is_(True),
            )
            .values(
                paused=paused,
                paused_by=pause.paused_by if pause else None,
                paused_reason=pause.reason if pause else None,
                paused_at=pause.paused_at if pause else None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def take_probe_turn(self, name: str, now: datetime, last_started_by: datetime) -> bool:
        """Take `name`'s probe turn unless a probe of it started after `last_started_by` (in
        any process) or it is paused: one conditional UPDATE, so of processes asking at the
        same moment exactly one gets it (on PostgreSQL the others' UPDATEs wait for its row
        lock, then find the condition false; SQLite has one writer at a time). False when
        another process has the turn, or the row is missing."""
        started = ConnectorState.last_probe_started_at
        result = await self.session.execute(
            update(ConnectorState)
            .where(
                ConnectorState.name == name,
                ConnectorState.paused.is_not(True),
                or_(started.is_(None), started <= last_started_by),
            )
            .values(last_probe_started_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def set_signals(self, name: str, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(ConnectorState)
            .where(ConnectorState.name == name)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def add_event(
        self, connector: str, action: str, at: datetime, actor: str | None, reason: str | None
    ) -> None:
        self.session.add(
            ConnectorEvent(connector=connector, action=action, at=at, actor=actor, reason=reason)
        )
        await self.session.flush()

    async def events(
        self,
        connector: str,
        *,
        actions: Sequence[str] | None = None,
        limit: int = 20,
        after: tuple[datetime, str] | None = None,
    ) -> list[ConnectorEvent]:
        """A connector's events, newest first (those after the keyset position `after`)."""
        statement = select(ConnectorEvent).where(ConnectorEvent.connector == connector)
        if actions is not None:
            statement = statement.where(ConnectorEvent.action.in_(actions))
        if after is not None:
            statement = statement.where(
                newer_first_after(ConnectorEvent.at, ConnectorEvent.id, after)
            )
        statement = statement.order_by(ConnectorEvent.at.desc(), ConnectorEvent.id.desc())
        return list(await self.session.scalars(statement.limit(limit)))

    async def last_events(self, action: str, since: datetime) -> dict[str, datetime]:
        """When each connector last had an event `action` (since `since`)."""
        statement = (
            select(ConnectorEvent.connector, func.max(ConnectorEvent.at))
            .where(ConnectorEvent.action == action, ConnectorEvent.at >= since)
            .group_by(ConnectorEvent.connector)
        )
        return {row[0]: row[1] for row in await self.session.execute(statement)}

    async def add_to_bucket(
        self, connector: str, start: datetime, process: str, delta: Bucket
    ) -> None:
        """Add this process's counts to its own row (no other process writes it)."""
        row = await self.session.get(ConnectorBucket, (connector, start, process))
        if row is None:
            row = ConnectorBucket(
                connector=connector,
                start=start,
                process=process,
                calls=0,
                failures=0,
                errors=0,
                refused=0,
                attempts=0,
                latency_ms_sum=0.0,
                latency=[],
                probes=0,
                probe_failures=0,
            )
            self.session.add(row)
        total = to_bucket(row)
        total.merge(delta)
        row.calls, row.failures, row.errors = total.calls, total.failures, total.errors
        row.refused, row.attempts = total.refused, total.attempts
        row.latency_ms_sum, row.latency = total.latency_ms_sum, total.latency
        row.probes, row.probe_failures = total.probes, total.probe_failures
        await self.session.flush()

    async def buckets(self, connector: str | None, since: datetime) -> list[ConnectorBucket]:
        statement = select(ConnectorBucket).where(ConnectorBucket.start >= since)
        if connector is not None:
            statement = statement.where(ConnectorBucket.connector == connector)
        return list(await self.session.scalars(statement.order_by(ConnectorBucket.start)))

    async def prune(self, buckets_before: datetime, events_before: datetime) -> None:
        await self.session.execute(
            delete(ConnectorBucket).where(ConnectorBucket.start < buckets_before)
        )
        await self.session.execute(
            delete(ConnectorEvent).where(
                ConnectorEvent.at < events_before, ConnectorEvent.action.like("error%")
            )
        )
        await self.session.execute(
            delete(DashboardSession).where(DashboardSession.expires_at < buckets_before)
        )

    async def add_session(self, record: DashboardSession) -> None:
        self.session.add(record)
        await self.session.flush()

    async def dashboard_session(self, token_hash: str) -> DashboardSession | None:
        return await self.session.get(DashboardSession, token_hash)

    async def drop_session(self, token_hash: str) -> None:
        await self.session.execute(
            delete(DashboardSession).where(DashboardSession.token_hash == token_hash)
        )


def to_bucket(row: ConnectorBucket) -> Bucket:
    bucket = Bucket(
        calls=row.calls or 0,
        failures=row.failures or 0,
        errors=row.errors or 0,
        refused=row.refused or 0,
        attempts=row.attempts or 0,
        latency_ms_sum=row.latency_ms_sum or 0.0,
        probes=row.probes or 0,
        probe_failures=row.probe_failures or 0,
    )
    bucket.merge(Bucket(latency=list(row.latency or [])))
    return bucket
