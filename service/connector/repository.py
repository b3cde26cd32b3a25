"""All SQL about connector state, events, call buckets and dashboard sessions."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, or_, select, update

from schemas.connector import BreakerState, Pause
from service.connector.stats import Bucket
from service.models import ConnectorBucket, ConnectorEvent, ConnectorState, DashboardSession
from service.pagination import newer_first_after
from service.repository import Repository

STATES = cast(Table, ConnectorState.__table__)
BUCKETS = cast(Table, ConnectorBucket.__table__)


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

    async def set_signals(self, values: Mapping[str, dict[str, Any]]) -> None:
        """Each connector's new signal columns (`values` by connector): one statement per set
        of columns written, sent as one batch (on PostgreSQL one round trip for them all)."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for name, changed in values.items():
            if changed:
                rows = by_columns.setdefault(tuple(sorted(changed)), [])
                rows.append({"_name": name, **{f"_set_{key}": v for key, v in changed.items()}})
        for columns, rows in by_columns.items():
            statement = (
                update(STATES)
                .where(STATES.c.name == bindparam("_name"))
                .values({column: bindparam(f"_set_{column}") for column in columns})
            )
            await self.session.execute(statement, rows)

    async def add_event(
        self, connector: str, action: str, at: datetime, actor: str | None, reason: str | None
    ) -> None:
        await self.add_events([(connector, action, at, actor, reason)])

    async def add_events(
        self, events: Sequence[tuple[str, str, datetime, str | None, str | None]]
    ) -> None:
        """Events (connector, action, at, actor, reason), inserted together: one statement."""
        if not events:
            return
        self.session.add_all(
            ConnectorEvent(connector=connector, action=action, at=at, actor=actor, reason=reason)
            for connector, action, at, actor, reason in events
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

    async def bucket_total(self, connector: str, start: datetime, process: str) -> Bucket | None:
        """What `process`'s row of `connector`'s bucket at `start` holds, if there is one."""
        row = await self.session.get(ConnectorBucket, (connector, start, process))
        return None if row is None else to_bucket(row)

    async def store_buckets(
        self, process: str, totals: Mapping[tuple[str, datetime], Bucket]
    ) -> None:
        """This process's totals of its buckets (by connector and start): each row inserted,
        or overwritten if it is there (no other process writes a process's rows). One
        statement for them all and nothing read (it was a read and a write a connector, every
        `health_sync_s`, in every process)."""
        if not totals:
            return
        statement = self._insert(BUCKETS)
        statement = statement.on_conflict_do_update(
            index_elements=["connector", "start", "process"],
            set_={column: statement.excluded[column] for column in _BUCKET_COUNTS},
        )
        rows = [
            {"connector": connector, "start": start, "process": process, **_counts_of(bucket)}
            for (connector, start), bucket in totals.items()
        ]
        await self.session.execute(statement, rows)

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


_BUCKET_COUNTS = (
    "calls",
    "failures",
    "errors",
    "refused",
    "attempts",
    "latency_ms_sum",
    "latency",
    "probes",
    "probe_failures",
)


def _counts_of(bucket: Bucket) -> dict[str, Any]:
    return {column: getattr(bucket, column) for column in _BUCKET_COUNTS}


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
