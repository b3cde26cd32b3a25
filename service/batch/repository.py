"""All SQL about batches. Counts are GROUP BY queries over an index, never rows in Python."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Exists, Table, exists, func, insert, literal, select, update
from sqlalchemy.orm import InstrumentedAttribute

from schemas.verification import VerificationStatus
from service.auth.principal import Principal
from service.auth.scope import scoped
from service.models import Batch, BatchLineError, Verification
from service.pagination import newer_first_after
from service.repository import Repository

ENDED = (
    VerificationStatus.completed.value,
    VerificationStatus.failed.value,
    VerificationStatus.cancelled.value,
    VerificationStatus.withdrawn.value,
)
"""Statuses after which a verification runs no more."""

BATCHES = cast(Table, Batch.__table__)
BATCH_ERRORS = cast(Table, BatchLineError.__table__)
VERIFICATIONS = cast(Table, Verification.__table__)


class BatchRepository(Repository):
    async def add(self, batch: Batch) -> None:
        self.session.add(batch)
        await self.session.flush()

    async def get(self, batch_id: str, *, scope: Principal | str) -> Batch | None:
        """The batch, if its submitter's region lies inside `scope` ('' for the service's own
        work): a township key sees its township's batches, a county key its county's."""
        statement = scoped(
            select(Batch).where(Batch.id == batch_id).execution_options(populate_existing=True),
            scope,
            Batch.region_prefix,
        )
        return await self.session.scalar(statement)

    async def by_idempotency_key(self, created_by: str, key: str) -> Batch | None:
        return await self.session.scalar(
            select(Batch).where(Batch.created_by == created_by, Batch.idempotency_key == key)
        )

    async def page(
        self,
        *,
        scope: Principal | str,
        status: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
        completed: bool | None = None,
        kind: str | None = None,
        reference: str | None = None,
    ) -> list[Batch]:
        statement = scoped(select(Batch), scope, Batch.region_prefix)
        if status is not None:
            statement = statement.where(Batch.status == status)
        if kind is not None:
            statement = statement.where(Batch.kind == kind)
        if reference is not None:
            statement = statement.where(Batch.reference == reference)
        if completed is not None:
            done = Batch.completed_at.is_not(None)
            statement = statement.where(done if completed else ~done)
        if after is not None:
            statement = statement.where(newer_first_after(Batch.created_at, Batch.id, after))
        statement = statement.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit)
        return list(await self.session.scalars(statement))

    async def advance(
        self,
        batch_id: str,
        *,
        received: int,
        to_line: int,
        households: int,
        invalid: int,
        digest: str | None = None,
    ) -> bool:
        """Count a chunk of lines in, if the batch is still open and nobody else added lines
        since `received` was read (False: then the caller rolls the chunk back); with
        `digest`, the Idempotency-Key's digest now covers every line through `to_line`."""
        kept = {} if digest is None else {"idempotent_lines": to_line, "idempotent_digest": digest}
        result = await self.session.execute(
            update(BATCHES)
            .where(
                BATCHES.c.id == batch_id,
                BATCHES.c.status == "open",
                BATCHES.c.lines_received == received,
            )
            .values(
                lines_received=to_line,
                households=BATCHES.c.households + households,
                invalid_lines=BATCHES.c.invalid_lines + invalid,
                **kept,
            )
        )
        return int(cast(Any, result).rowcount) == 1

    async def insert_errors(
        self, batch_id: str, problems: Sequence[tuple[int, dict[str, Any]]]
    ) -> None:
        if problems:
            await self.session.execute(
                insert(BATCH_ERRORS),
                [
                    {"batch_id": batch_id, "line": line, "problem": problem}
                    for line, problem in problems
                ],
            )

    async def set_status(self, batch_id: str, status: str, **values: Any) -> None:
        await self.session.execute(
            update(BATCHES).where(BATCHES.c.id == batch_id).values(status=status, **values)
        )

    async def cancel_queued(self, batch_id: str, now: datetime) -> int:
        """Cancel the batch's verifications nobody has started; how many."""
        result = await self.session.execute(
            update(VERIFICATIONS)
            .where(VERIFICATIONS.c.batch_id == batch_id, VERIFICATIONS.c.status == "queued")
            .values(
                status="cancelled", completed_at=literal(now, VERIFICATIONS.c.completed_at.type)
            )
        )
        return int(cast(Any, result).rowcount)

    async def counts(self, batch_id: str) -> list[tuple[str, str | None, int]]:
        """(status, recommendation, count) of the batch's verifications: one index scan."""
        statement = (
            select(VERIFICATIONS.c.status, VERIFICATIONS.c.recommendation, func.count())
            .where(VERIFICATIONS.c.batch_id == batch_id)
            .group_by(VERIFICATIONS.c.status, VERIFICATIONS.c.recommendation)
        )
        return [(row[0], row[1], int(row[2])) for row in await self.session.execute(statement)]

    async def last_ended(self, batch_id: str) -> datetime | None:
        """When the batch's last verification ended (max() keeps the column's type)."""
        statement = select(func.max(VERIFICATIONS.c.completed_at)).where(
            VERIFICATIONS.c.batch_id == batch_id
        )
        return cast(datetime | None, await self.session.scalar(statement))

    async def get_or_add(self, values: dict[str, Any]) -> str:
        """The id of the batch `values` would make, keyed by its creator and idempotency
        key: inserted unless there is one (concurrent callers wait at the unique key)."""
        await self.session.execute(
            self._insert(BATCHES)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["created_by", "idempotency_key"])
        )
        found = await self.session.scalar(
            select(BATCHES.c.id).where(
                BATCHES.c.created_by == values["created_by"],
                BATCHES.c.idempotency_key == values["idempotency_key"],
            )
        )
        return cast(str, found)

    async def take_lines(self, batch_id: str, count: int) -> int | None:
        """Count `count` more households in, if the batch is still open; the first of their
        line numbers (None: closed or cancelled meanwhile, it takes no more)."""
        last = await self.session.scalar(
            update(BATCHES)
            .where(BATCHES.c.id == batch_id, BATCHES.c.status == "open")
            .values(
                households=BATCHES.c.households + count,
                lines_received=BATCHES.c.lines_received + count,
            )
            .returning(BATCHES.c.lines_received)
        )
        return None if last is None else int(last) - count + 1

    async def keyed_like(
        self, created_by: str, key: str, *, prefix: str, suffix: str
    ) -> list[tuple[str, str]]:
        """(id, status) of one creator's batches keyed `key`, or by a key that starts with
        `prefix` and ends with `suffix`."""
        k = BATCHES.c.idempotency_key
        statement = select(BATCHES.c.id, BATCHES.c.status).where(
            BATCHES.c.created_by == created_by,
            (k == key)
            | (k.startswith(prefix, autoescape=True) & k.endswith(suffix, autoescape=True)),
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def close_open(
        self, batch_ids: Sequence[str], now: datetime, *, status: str = "closed"
    ) -> None:
        if batch_ids:
            await self.session.execute(
                update(BATCHES)
                .where(BATCHES.c.id.in_(batch_ids), BATCHES.c.status == "open")
                .values(status=status, closed_at=literal(now, BATCHES.c.closed_at.type))
            )

    async def open_of(self, created_by: str, key_prefix: str, key_suffix: str) -> list[str]:
        """Open batches of one creator whose idempotency key starts and ends so."""
        statement = select(BATCHES.c.id).where(
            BATCHES.c.created_by == created_by,
            BATCHES.c.status == "open",
            BATCHES.c.idempotency_key.startswith(key_prefix, autoescape=True),
            BATCHES.c.idempotency_key.endswith(key_suffix, autoescape=True),
        )
        return list(await self.session.scalars(statement))

    async def all_ended(self, batch_id: str) -> bool:
        """Has every verification of the batch ended (none queued or running)?"""
        return not await self.session.scalar(select(_running(batch_id)))

    async def ended_uncompleted(self, *, limit: int) -> list[Batch]:
        """Closed or cancelled batches not yet completed, with nothing of theirs still
        to run: the ones to complete now."""
        running = _running(Batch.id)
        statement = (
            select(Batch)
            .where(
                Batch.status.in_(("closed", "cancelled")),
                Batch.completed_at.is_(None),
                ~running,
            )
            .order_by(Batch.created_at)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def mark_completed(self, batch_id: str, now: datetime) -> bool:
        """Complete the batch unless someone did (True: this caller did)."""
        result = await self.session.execute(
            update(BATCHES)
            .where(BATCHES.c.id == batch_id, BATCHES.c.completed_at.is_(None))
            .values(completed_at=literal(now, BATCHES.c.completed_at.type))
        )
        return int(cast(Any, result).rowcount) == 1

    async def errors(self, batch_id: str, *, after_line: int, limit: int) -> list[BatchLineError]:
        statement = (
            select(BatchLineError)
            .where(BatchLineError.batch_id == batch_id, BatchLineError.line > after_line)
            .order_by(BatchLineError.line)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def verifications(
        self,
        batch_id: str,
        *,
        scope: Principal | str,
        status: str | None,
        recommendation: str | None,
        after_line: int,
        limit: int,
    ) -> list[tuple[int, str, str, str, str | None]]:
        """(line, id, reference, status, recommendation) in line order, of the households
        inside `scope`."""
        v = VERIFICATIONS.c
        statement = scoped(
            select(v.batch_line, v.id, v.reference, v.status, v.recommendation).where(
                v.batch_id == batch_id, v.batch_line > after_line
            ),
            scope,
            v.region_code,
            v.township_code,
        )
        if status is not None:
            statement = statement.where(v.status == status)
        if recommendation is not None:
            statement = statement.where(v.recommendation == recommendation)
        statement = statement.order_by(v.batch_line).limit(limit)
        return [
            (int(row[0]), row[1], row[2], row[3], row[4])
            for row in await self.session.execute(statement)
        ]


def _running(batch_id: str | ColumnElement[str] | InstrumentedAttribute[str]) -> Exists:
    """Whether a verification of the batch (an id, or a batch row's in a query) has not
    ended yet."""
    v = VERIFICATIONS.c
    return exists().where(v.batch_id == batch_id, v.status.not_in(ENDED))
