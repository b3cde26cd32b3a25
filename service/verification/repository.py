"""All SQL about verifications."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    CTE,
    BindParameter,
    Column,
    ColumnElement,
    CompoundSelect,
    Executable,
    Integer,
    ScalarSelect,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import joinedload, selectinload

from schemas.verification import VerificationFilter
from service.auth.principal import Principal
from service.auth.scope import Statement, prefix_of, scoped
from service.bulk import Rows, insert_together
from service.crypto.keyring import Keyring
from service.crypto.sealed import keyring_of, row_key_of, seal_in
from service.models import (
    Decision,
    IdempotencyKey,
    Member,
    Report,
    SourceResult,
    Verification,
)
from service.models.base import utcnow
from service.pagination import newer_first_after
from service.prepared import execute_prepared, execute_prepared_many, rows_prepared
from service.repository import Repository
from service.verification.stored import MemberRow, SourceRow, VerificationRow

# Writes on the hot path go through the tables (Core), not the ORM's bulk statements: those
# evaluate criteria against the session and cost several times more CPU per statement.
VERIFICATIONS = cast(Table, Verification.__table__)
MEMBERS = cast(Table, Member.__table__)
SOURCE_RESULTS = cast(Table, SourceResult.__table__)
REPORTS = cast(Table, Report.__table__)
THIS_VERIFICATION: BindParameter[str] = bindparam(
    "_this_verification", type_=VERIFICATIONS.c.id.type
)
"""The verification a statement is about, as a bind parameter: the statements built once
(`claim`, `get`, `finish`, `count_awaiting_reading`) and the expressions read within the
last two name it so."""

UNFINISHED = ("queued", "running")
WITHDRAWN = "withdrawn"
WITHDRAWN_DETAIL = "the verification was withdrawn before the partner answered"
# Written after intake (by a run, a withdrawal), never by the insert.
_RUN_WRITTEN = frozenset(
    {
        "error",
        "awaiting",
        "withdrawn_at",
        "withdrawn_by",
        "withdrawn_by_name",
        "withdrawal_reason",
        "withdrawn_from",
    }
)


class VerificationRepository(Repository):
    async def row(self, verification_id: str) -> Verification | None:
        """The verification's own row, unscoped and without its members or sources (those
        stay unloaded): for what reads its columns alone, in a transaction that writes."""
        return await self.session.get(Verification, verification_id)

    async def member_names(self, verification_id: str) -> list[str]:
        """The names of the verification's members, in their order (opened)."""
        found = await self.session.scalars(
            select(Member)
            .where(Member.verification_id == verification_id)
            .order_by(Member.position)
        )
        return [member.name for member in found]

    def _detailed(self) -> Select[Any]:
        return select(Verification).options(
            selectinload(Verification.members), selectinload(Verification.sources)
        )

    async def get(
        self, verification_id: str, *, scope: Principal | str = ""
    ) -> Verification | None:
        """The verification, if it lies inside `scope` (a caller, or a region prefix; ''
        for the service's own work)."""
        # One statement: the members and sources joined to their verification (a few rows
        # each), not a SELECT for each collection after it. Built once for the service's
        # own reads (a worker reads each household it claims).
        statement = _GET if not prefix_of(scope) else in_scope(_GET, scope)
        result = await self.session.execute(statement, {THIS_VERIFICATION.key: verification_id})
        return result.unique().scalar_one_or_none()

    async def region_of(self, verification_id: str) -> tuple[str, str | None] | None:
        """The (region_code, township_code) of a verification, unscoped: for records about
        it (the audit trail, webhook events), never for an answer to a caller."""
        row = (
            await self.session.execute(
                select(Verification.region_code, Verification.township_code).where(
                    Verification.id == verification_id
                )
            )
        ).first()
        return None if row is None else (row[0], row[1])

    @staticmethod
    def place_of(verification_id: str) -> ScalarSelect[str]:
        """The place of a verification (its township's code, else its county's, as
        `service.auth.scope.place`), as a subquery to write within another statement (an
        audit record about it): no round trip of its own. NULL when there is none."""
        return (
            select(func.coalesce(Verification.township_code, Verification.region_code))
            .where(Verification.id == verification_id)
            .scalar_subquery()
        )

    async def page(
        self,
        *,
        scope: Principal | str,
        where: VerificationFilter,
        limit: int,
        after: tuple[datetime, str] | None,
        member_blind: str | None = None,
    ) -> list[Verification]:
        """Newest first; `after` is the (created_at, id) of the last item already seen;
        `member_blind`: only those with a member of this blind index (an ID number's)."""
        statement = in_scope(self._detailed(), scope)
        if member_blind is not None:
            statement = statement.where(
                Verification.id.in_(
                    select(Member.verification_id).where(Member.id_number_blind == member_blind)
                )
            )
        for column, value in (
            (Verification.reference, where.reference),
            (Verification.status, where.status),
            (Verification.program, where.program),
            (Verification.area, where.area),
            (Verification.recommendation, where.recommendation),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if where.decided is not None:
            decided = select(Decision.id).where(Decision.verification_id == Verification.id)
            statement = statement.where(decided.exists() if where.decided else ~decided.exists())
        if where.created_from is not None:
            statement = statement.where(Verification.created_at >= where.created_from)
        if where.created_before is not None:
            statement = statement.where(Verification.created_at < where.created_before)
        if after is not None:
            statement = statement.where(
                newer_first_after(Verification.created_at, Verification.id, after)
            )
        statement = statement.order_by(Verification.created_at.desc(), Verification.id.desc())
        return list(await self.session.scalars(statement.limit(limit)))

    async def ids_with_member(self, id_number: str, *, scope: Principal | str) -> list[str]:
        """Verifications in `scope` whose household includes this person (found through
        the blind index of the ID number)."""
        blind = keyring_of(self.session).blind(id_number)
        statement = in_scope(
            select(Member.verification_id)
            .join(Verification, Verification.id == Member.verification_id)
            .where(Member.id_number_blind == blind)
            .distinct(),
            scope,
        )
        return list(await self.session.scalars(statement))

    async def insert(
        self, verification: Verification, *, claim: Mapping[str, Any] | None = None
    ) -> None:
        """Insert a new verification with its members and planned sources.

        Core statements instead of the ORM unit of work, which costs several milliseconds
        per request here; `verification` stays transient, so it must carry its id and
        created_at already. `claim`: the columns of a run's claim on it
        (`Workflow.new_claim`), stored by the insert itself, in place of the values
        `verification` carries (which keeps them).
        """
        await self.insert_many([verification], claim=claim)

    async def insert_many(
        self, verifications: list[Verification], *, claim: Mapping[str, Any] | None = None
    ) -> None:
        """`insert` for many verifications at once (a batch's chunk): one statement on
        PostgreSQL, one executemany per table on SQLite (`service.bulk`)."""
        await insert_together(self.session, self.rows_of(verifications, claim=claim))

    def rows_of(
        self, verifications: list[Verification], *, claim: Mapping[str, Any] | None = None
    ) -> list[Rows]:
        """The rows `insert_many` inserts, for a caller that inserts them together with
        others (`service.bulk.insert_together`). Names and ID numbers are sealed here,
        each bound to its row."""
        if not verifications:  # a batch's chunk of refused lines alone
            return []
        keyring = keyring_of(self.session)
        # Left to their defaults: no run has written them yet.
        columns = [
            column.name for column in VERIFICATIONS.columns if column.name not in _RUN_WRITTEN
        ]
        claimed = dict(claim or {})
        members = []
        for verification in verifications:
            for member in verification.members:
                row = {"verification_id": verification.id, "position": member.position}
                values = {
                    "id_number": member.id_number,
                    "name": member.name,
                    "relation": member.relation,
                    "declared_monthly_income": member.declared_monthly_income,
                }
                members.append(row | seal_in(Member, keyring, row, values))
        sources: list[dict[str, Any]] = [
            {
                "verification_id": verification.id,
                "source": row.source,
                "connector_version": row.connector_version,
                "status": row.status,
                "attempts": 0,
            }
            | seal_in(
                SourceResult,
                keyring,
                {"verification_id": verification.id, "source": row.source},
                {"records": []},
            )
            for verification in verifications
            for row in verification.sources
        ]
        return [
            Rows(
                VERIFICATIONS,
                [{name: getattr(row, name) for name in columns} | claimed for row in verifications],
            ),
            Rows(MEMBERS, members),
            # None when no connector is registered.
            Rows(SOURCE_RESULTS, sources),
        ]

    async def due_ids(
        self, now: datetime, *, unclaimed_before: datetime | None, limit: int
    ) -> list[str]:
        """Unfinished verifications nobody runs: an expired lease, or (unless
        `unclaimed_before` is None) never claimed and created before then (a fresh one is
        about to be claimed by the process that stored it)."""
        lease = VERIFICATIONS.c.lease_expires_at
        due = lease < literal(now, lease.type)
        if unclaimed_before is not None:
            due = or_(
                due,
                and_(
                    lease.is_(None),
                    VERIFICATIONS.c.created_at
                    < literal(unclaimed_before, VERIFICATIONS.c.created_at.type),
                    # Released with sources awaiting the partner: the collects finish it.
                    VERIFICATIONS.c.awaiting == 0,
                ),
            )
        statement = (
            select(VERIFICATIONS.c.id)
            .where(VERIFICATIONS.c.status.in_(UNFINISHED), due)
            .order_by(VERIFICATIONS.c.created_at)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def count_queued(self) -> int:
        """Verifications stored and not yet claimed by any process (the queue's depth),
        batches' households aside; one count over an index."""
        statement = (
            select(func.count())
            .select_from(VERIFICATIONS)
            .where(VERIFICATIONS.c.status == "queued")
            # A batch's households are a backlog by design, paced by the workers: they do
            # not make single requests shed (and batch_id IS NULL keeps to an index).
            .where(VERIFICATIONS.c.batch_id.is_(None))
        )
        return int(await self.session.scalar(statement) or 0)

    async def claim(self, verification_id: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take the run of an unfinished verification that nobody else holds a live lease
        on; it is `running` from then on (from its first start when a run resumes)."""
        result = await self.session.execute(
            _CLAIM,
            {
                THIS_VERIFICATION.key: verification_id,
                "_claim_owner": owner,
                "_claim_now": now,
                "_claim_until": until,
            },
        )
        return _rowcount(result) == 1

    async def claim_reading(
        self, verification_id: str, owner: str, now: datetime, until: datetime
    ) -> VerificationRow | None:
        """`claim`, and what `get` would read of the claimed verification for its run (its
        members and sources, sealed values opened; a pending source's records are not):
        None when it is not claimed. The claim and the read go together in one statement
        on PostgreSQL (the claim's UPDATE in a CTE); on SQLite the claim's UPDATE returns
        the verification's columns and one more statement reads the rest. Against the
        claim, `get` (18 joined rows through the ORM's identity map) and `Claimed.of` of
        the objects: 0.9 ms less CPU a claim on PostgreSQL, 0.8 on SQLite."""
        parameters = {
            THIS_VERIFICATION.key: verification_id,
            "_claim_owner": owner,
            "_claim_now": now,
            "_claim_until": until,
        }
        if self.session.get_bind().dialect.name == "postgresql":
            rows = await rows_prepared(self.session, _CLAIM_READING, parameters)
            if not rows:
                return None
            claimed, rows = rows[0][_VERIFICATION_PART], rows[1:]
        else:
            returned = await rows_prepared(self.session, _CLAIM_RETURNING, parameters)
            if not returned:
                return None
            claimed = returned[0]
            rows = await rows_prepared(
                self.session, _HOUSEHOLD_READ, {THIS_VERIFICATION.key: verification_id}
            )
        return _verification_row(verification_id, claimed, rows, keyring_of(self.session))

    async def get_reported(self, verification_id: str) -> tuple[Verification, Report] | None:
        """The verification (with its members and sources) and its report, the report read
        by the verification's own statement; None unless it has one."""
        row = (
            await self.session.execute(
                self._detailed()
                .add_columns(Report)
                .join(Report, Report.verification_id == Verification.id)
                .where(Verification.id == verification_id)
                .execution_options(populate_existing=True)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def still_ours(self, verification_id: str, owner: str) -> str | None:
        """Whether a run may go on: None when the verification is unfinished and `owner`
        holds its lease; otherwise why not (its status, or `lease lost`)."""
        row = (
            await self.session.execute(
                select(VERIFICATIONS.c.status, VERIFICATIONS.c.lease_owner).where(
                    VERIFICATIONS.c.id == verification_id
                )
            )
        ).first()
        if row is None or row[0] not in UNFINISHED:
            return "gone" if row is None else str(row[0])
        return None if row[1] == owner else "lease lost"

    async def renew(self, verification_id: str, owner: str, until: datetime) -> bool:
        """Extend our lease; False when it is no longer ours (or the run is over)."""
        result = await self.session.execute(
            update(VERIFICATIONS)
            .where(
                VERIFICATIONS.c.id == verification_id,
                VERIFICATIONS.c.lease_owner == owner,
                VERIFICATIONS.c.status.in_(UNFINISHED),
            )
            .values(lease_expires_at=until)
        )
        return _rowcount(result) == 1

    async def release(self, verification_id: str, owner: str, now: datetime) -> None:
        """Give an unfinished run back at once (shutting down), for anyone to resume: as a
        lease that lapsed now, which every process's sweep resumes (the workers' on
        PostgreSQL too, which look only for lapsed leases: a lease cleared instead left the
        run unfinished for good once its queue job had ended)."""
        lease = VERIFICATIONS.c.lease_expires_at
        await self.session.execute(
            update(VERIFICATIONS)
            .where(VERIFICATIONS.c.id == verification_id, VERIFICATIONS.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=literal(now, lease.type))
        )

    async def hand_back_unclaimed(self, verification_ids: Sequence[str], now: datetime) -> int:
        """Give back verifications whose queue job this process took but never claimed
        (shutting down): as a lease that lapsed now, which every sweep resumes. Their job
        has ended with the process that took it, so nothing else would run them; one
        claimed meanwhile, or ended, is left alone. How many were handed back."""
        if not verification_ids:
            return 0
        lease = VERIFICATIONS.c.lease_expires_at
        result = await self.session.execute(
            update(VERIFICATIONS)
            .where(
                VERIFICATIONS.c.id.in_(list(verification_ids)),
                VERIFICATIONS.c.status.in_(UNFINISHED),
                lease.is_(None),
                VERIFICATIONS.c.awaiting == 0,
            )
            .values(lease_expires_at=literal(now, lease.type))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def count_awaiting(self, verification_id: str, change: int = 0) -> int:
        """Add `change` to the verification's count of awaiting sources; the new count.

        Also the first statement of a transaction that may end the verification: on
        PostgreSQL it locks the row, so the run that stores the last pending source and a
        collect that settles the last awaiting one go one after the other, and the second
        sees what the first stored (exactly one of them finishes)."""
        return (await self.count_awaiting_reading(verification_id, (), change))[0]

    async def count_awaiting_reading(
        self,
        verification_id: str,
        reading: Sequence[ColumnElement[Any]],
        change: int = 0,
        *,
        parameters: Mapping[str, Any] | None = None,
    ) -> tuple[int, Sequence[Any]]:
        """`count_awaiting`, and the values of `reading` (expressions over other tables)
        read by the same statement. The statement is built once per `reading` (the same
        expressions, by identity: build them once, naming the verification with
        `THIS_VERIFICATION` and their other values with bind parameters, given here in
        `parameters`)."""
        result = await execute_prepared(
            self.session,
            _awaiting_statement(tuple(reading)),
            {
                **(parameters or {}),
                THIS_VERIFICATION.key: verification_id,
                "_awaiting_change": change,
            },
        )
        row = result.first()
        return (0, (None,) * len(reading)) if row is None else (int(row[0]), tuple(row)[1:])

    async def park(self, verification_id: str, owner: str) -> bool:
        """End our run of a verification whose remaining sources await the partner: the
        lease is given up (nobody runs it; collects finish it), it stays `running`."""
        result = await self.session.execute(
            update(VERIFICATIONS)
            .where(
                VERIFICATIONS.c.id == verification_id,
                VERIFICATIONS.c.lease_owner == owner,
                VERIFICATIONS.c.status.in_(UNFINISHED),
            )
            .values(lease_owner=None, lease_expires_at=None)
        )
        return _rowcount(result) == 1

    async def has_pending(self, verification_id: str) -> bool:
        """Whether a source of the verification is still to be asked."""
        statement = select(SOURCE_RESULTS.c.id).where(
            SOURCE_RESULTS.c.verification_id == verification_id,
            SOURCE_RESULTS.c.status == "pending",
        )
        return (await self.session.scalar(statement.limit(1))) is not None

    async def waiting_ids(self, verification_ids: list[str]) -> list[str]:
        """Those of `verification_ids` a `Prefer: wait` stops waiting for: ended (or gone),
        or run as far as it goes now (only sources awaiting the partner are left)."""
        statement = select(VERIFICATIONS.c.id).where(
            VERIFICATIONS.c.id.in_(verification_ids),
            VERIFICATIONS.c.status.in_(UNFINISHED),
            or_(VERIFICATIONS.c.awaiting == 0, VERIFICATIONS.c.lease_owner.is_not(None)),
        )
        going = set(await self.session.scalars(statement))
        return [id_ for id_ in verification_ids if id_ not in going]

    async def due_collects(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(verification id, source) of awaiting sources whose collect is due, oldest
        first."""
        due = SOURCE_RESULTS.c.collect_at
        statement = (
            select(SOURCE_RESULTS.c.verification_id, SOURCE_RESULTS.c.source)
            .where(SOURCE_RESULTS.c.status == "awaiting", due <= literal(now, due.type))
            .order_by(due)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def claim_collect(
        self, verification_id: str, source: str, now: datetime, until: datetime
    ) -> bool:
        """Take a due collect: nobody else collects this source before `until` (when a
        collector that died lets it fall due again). Counted as a failure until it ends
        cleanly (`reschedule_collect`), so a collect that always fails is not retried for
        ever."""
        due = SOURCE_RESULTS.c.collect_at
        result = await self.session.execute(
            update(SOURCE_RESULTS)
            .where(
                SOURCE_RESULTS.c.verification_id == verification_id,
                SOURCE_RESULTS.c.source == source,
                SOURCE_RESULTS.c.status == "awaiting",
                due <= literal(now, due.type),
            )
            .values(
                collect_at=until,
                collects=SOURCE_RESULTS.c.collects + 1,
                collect_failures=SOURCE_RESULTS.c.collect_failures + 1,
            )
        )
        return _rowcount(result) == 1

    async def awaiting_source(self, verification_id: str, source: str) -> SourceResult | None:
        """The source row, while it is awaiting."""
        statement = select(SourceResult).where(
            SourceResult.verification_id == verification_id,
            SourceResult.source == source,
            SourceResult.status == "awaiting",
        )
        return await self.session.scalar(statement.execution_options(populate_existing=True))

    async def reschedule_collect(
        self,
        verification_id: str,
        source: str,
        at: datetime,
        *,
        failed: bool,
        counted: bool = True,
    ) -> bool:
        """Collect an awaiting source again at `at`; unless the collect `failed` (our
        side), it ended cleanly and the failures in a row start again from 0. A collect
        not `counted` (the partner was not asked: paused) is taken off `collects` again,
        so the wait after it does not grow."""
        values: dict[str, Any] = {"collect_at": at}
        if not failed:
            values["collect_failures"] = 0
        if not counted:
            values["collects"] = SOURCE_RESULTS.c.collects - 1
        result = await self.session.execute(
            update(SOURCE_RESULTS)
            .where(
                SOURCE_RESULTS.c.verification_id == verification_id,
                SOURCE_RESULTS.c.source == source,
                SOURCE_RESULTS.c.status == "awaiting",
            )
            .values(**values)
        )
        return _rowcount(result) == 1

    async def finished_ids(self, verification_ids: list[str]) -> list[str]:
        """Those of `verification_ids` that are completed or failed (or do not exist)."""
        statement = select(VERIFICATIONS.c.id).where(
            VERIFICATIONS.c.id.in_(verification_ids), VERIFICATIONS.c.status.in_(UNFINISHED)
        )
        unfinished = set(await self.session.scalars(statement))
        return [id_ for id_ in verification_ids if id_ not in unfinished]

    async def count_unfinished_runs(self, verification_ids: list[str]) -> dict[str, int]:
        """How many of `verification_ids` failed, and how many were withdrawn: the runs
        that ended without a report to go by."""
        if not verification_ids:
            return {}
        ended = ("failed", "withdrawn")
        statement = (
            select(VERIFICATIONS.c.status, func.count())
            .where(VERIFICATIONS.c.id.in_(verification_ids), VERIFICATIONS.c.status.in_(ended))
            .group_by(VERIFICATIONS.c.status)
        )
        return {str(status): int(count) for status, count in await self.session.execute(statement)}

    async def idempotency_key(self, api_key_id: str, key: str) -> IdempotencyKey | None:
        return await self.session.get(IdempotencyKey, (api_key_id, key))

    @staticmethod
    def idempotency_key_rows(
        *, api_key_id: str, key: str, request_hash: str, verification_id: str
    ) -> Rows:
        """Which verification `key` created for this caller, as a row to insert with the
        verification (a second request with the key that races this one fails on the
        primary key, at that insert)."""
        return Rows(
            IDEMPOTENCY_KEYS,
            [
                {
                    "api_key_id": api_key_id,
                    "key": key,
                    "request_hash": request_hash,
                    "verification_id": verification_id,
                    "created_at": utcnow(),
                }
            ],
        )

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

    async def insert_report(self, values: dict[str, Any]) -> None:
        """Insert a report's row (`body` and `near_relatives` are sealed here)."""
        sealed = seal_in(Report, keyring_of(self.session), values, values)
        await self.session.execute(insert(REPORTS), [sealed])

    async def mark_running(self, verification_id: str, now: datetime) -> None:
        """Running from `now`, or still from the first start when a run resumes."""
        await self.session.execute(
            update(VERIFICATIONS)
            .where(VERIFICATIONS.c.id == verification_id)
            .values(
                status="running",
                started_at=func.coalesce(
                    VERIFICATIONS.c.started_at, literal(now, VERIFICATIONS.c.started_at.type)
                ),
            )
        )

    async def finish(
        self,
        verification_id: str,
        *,
        reading: Sequence[ColumnElement[Any]] = (),
        report: dict[str, Any] | None = None,
        **values: Any,
    ) -> Sequence[Any] | None:
        """End an unfinished verification (and its lease); None if it had already ended,
        so a duplicate run changes nothing. Otherwise the values of `reading` (expressions
        over other tables, say what the end's effects need to know), read by the same
        statement. As `count_awaiting_reading`, the statement is built once per `reading`
        and set of columns.

        `report`: the report's row (as `insert_report`), inserted only if the verification
        ends here. On PostgreSQL by the same statement (a round trip fewer at the end of
        every run); on SQLite, which has no INSERT in a WITH, by a second."""
        parameters = {
            THIS_VERIFICATION.key: verification_id,
            **{f"_finish_{name}": value for name, value in values.items()},
        }
        later = report  # inserted after the statement, unless by it
        statement: Executable
        if report is not None and self.session.get_bind().dialect.name == "postgresql":
            sealed = seal_in(Report, keyring_of(self.session), report, report)
            statement = _finish_reporting_statement(
                tuple(sorted(values)), tuple(reading), tuple(sorted(sealed))
            )
            parameters |= {f"_report_{name}": value for name, value in sealed.items()}
            later = None
        else:
            statement = _finish_statement(tuple(sorted(values)), tuple(reading))
        row = (await execute_prepared(self.session, statement, parameters)).first()
        if row is None:
            return None
        if later is not None:
            await self.insert_report(later)
        return tuple(row)[1:]

    async def withdraw(
        self,
        verification_id: str,
        *,
        now: datetime,
        by: str,
        by_name: str | None,
        reason: str | None,
    ) -> tuple[str, datetime] | None:
        """Withdraw the verification, unless it was withdrawn already (then None); the
        status it had and when it was withdrawn (`now`, or its completion if later). No
        partner is asked for it from here on: its unanswered sources become `withdrawn`,
        so that a run's or a collect's late answer stores nothing (they settle only
        `WHERE status = 'pending'` / `'awaiting'`), and no run can claim, park or finish
        it (those need it `queued` or `running`).

        The statements go in the order every run and collect takes the same rows, so that
        on PostgreSQL none of them can deadlock with it: awaiting sources first (a collect
        settles its source, then updates the verification), then the verification (a run
        updates it before its sources whenever it may update it at all), then the pending
        sources. The raw records are purged by the caller, in the same transaction."""
        parked = {
            "status": WITHDRAWN,
            "detail": WITHDRAWN_DETAIL,
            "token_sealed": None,
            "collect_at": None,
            "collect_deadline": None,
        }
        await self.session.execute(
            update(SOURCE_RESULTS)
            .where(
                SOURCE_RESULTS.c.verification_id == verification_id,
                SOURCE_RESULTS.c.status == "awaiting",
            )
            .values(**parked)
        )
        ended = VERIFICATIONS.c.completed_at
        was = await self.session.execute(
            update(VERIFICATIONS)
            .where(VERIFICATIONS.c.id == verification_id, VERIFICATIONS.c.status != WITHDRAWN)
            .values(
                status=WITHDRAWN,
                # The right-hand side is the row as it was: the status it is withdrawn from.
                withdrawn_from=VERIFICATIONS.c.status,
                # Never before the completion it withdraws: a run that completed while
                # this waited for the row (PostgreSQL) ended after `now` was read.
                withdrawn_at=case(
                    (ended > literal(now, ended.type), ended), else_=literal(now, ended.type)
                ),
                withdrawn_by=by,
                withdrawn_by_name=by_name,
                withdrawal_reason=reason,
                completed_at=func.coalesce(ended, literal(now, ended.type)),
                lease_owner=None,
                lease_expires_at=None,
                awaiting=0,
            )
            .returning(VERIFICATIONS.c.withdrawn_from, VERIFICATIONS.c.withdrawn_at)
        )
        row = was.one_or_none()
        if row is None:
            return None
        await self.session.execute(
            update(SOURCE_RESULTS)
            .where(
                SOURCE_RESULTS.c.verification_id == verification_id,
                SOURCE_RESULTS.c.status == "pending",
            )
            .values(status=WITHDRAWN, detail=WITHDRAWN_DETAIL)
        )
        return str(row[0]), row[1]

    async def still_completed(self, verification_id: str) -> bool:
        """Whether the verification is still `completed`, holding its row (on PostgreSQL)
        until the transaction ends: a decision recorded in this transaction and a
        withdrawal of the same verification go one after the other, never both unseen."""
        result = await self.session.execute(
            update(VERIFICATIONS)
            .where(VERIFICATIONS.c.id == verification_id, VERIFICATIONS.c.status == "completed")
            .values(status=VERIFICATIONS.c.status)
        )
        return _rowcount(result) == 1

    async def settle_source(
        self, verification_id: str, *, source: str, was: str = "pending", **values: Any
    ) -> bool:
        """Record a source's outcome on its planned row while it is still `was` (pending,
        or awaiting for a collect), unless one is stored already (then False: a duplicate
        run's or collect's answer never replaces the stored one). An outcome that is no
        longer awaiting clears the parked question (its token and collect times)."""
        stored = await self.settle_sources(verification_id, [{"source": source, **values}], was=was)
        return source in stored

    async def settle_sources(
        self, verification_id: str, outcomes: list[dict[str, Any]], *, was: str = "pending"
    ) -> set[str]:
        """`settle_source` for several sources of one verification in one statement (each
        of `outcomes` names its `source`); the sources it stored, the others having been
        stored already."""
        if not outcomes:
            return set()
        if (
            len(outcomes) > 1
            and self.session.get_bind().dialect.name != "postgresql"
            and all("records" in outcome for outcome in outcomes)
        ):
            return await self._settle_each(verification_id, outcomes, was=was)
        shape, parameters = self._settling(verification_id, outcomes, was=was)
        result = await execute_prepared(self.session, _settle_statement(shape), parameters)
        return set(result.scalars())

    async def _settle_each(
        self, verification_id: str, outcomes: list[dict[str, Any]], *, was: str
    ) -> set[str]:
        """`settle_sources` on SQLite: a one-row UPDATE per source, sent together
        (`executemany`). SQLite updates a row it finds by the unique index in one pass; six
        rows in one statement (`_settle_update`'s CASE per column) took three times as long,
        and two and a half times the INSERT that planned them (`bench/store.py`).

        `executemany` counts the rows changed, not which: when fewer than the outcomes
        (another run or a withdrawal stored some first; rare), the sources stored here are
        those whose row holds the records sealed here, a sealing being unique (a random
        nonce each). So every outcome gives its `records` (a run's always do)."""
        by_shape: dict[tuple[tuple[str, ...], ...], list[dict[str, Any]]] = {}
        sealed_records: dict[str, str] = {}
        for outcome in outcomes:
            # Each outcome as `settle_sources` would store it alone: one row's statement.
            shape, parameters = self._settling(verification_id, [outcome], was=was)
            sealed_records[parameters["_source_0"]] = parameters["_set_0_records_sealed"]
            by_shape.setdefault(shape, []).append(parameters)
        changed = 0
        for shape, rows in by_shape.items():
            changed += await execute_prepared_many(self.session, _settle_one_statement(shape), rows)
        if changed == len(outcomes):
            return set(sealed_records)
        stored = await self.session.execute(
            select(SOURCE_RESULTS.c.source, SOURCE_RESULTS.c.records_sealed).where(
                SOURCE_RESULTS.c.verification_id == verification_id,
                SOURCE_RESULTS.c.source.in_(sealed_records),
            )
        )
        return {source for source, records in stored if sealed_records[source] == records}

    def _settling(
        self, verification_id: str, outcomes: list[dict[str, Any]], *, was: str
    ) -> tuple[tuple[tuple[str, ...], ...], dict[str, Any]]:
        """The shape of `settle_sources`'s statement and its parameters."""
        keyring = keyring_of(self.session)
        parameters: dict[str, Any] = {"_verification_id": verification_id, "_was": was}
        shape = []
        for index, outcome in enumerate(outcomes):
            values = dict(outcome)
            source = values.pop("source")
            if was == "awaiting" and values.get("status") != "awaiting":
                values |= {"token": None, "collect_at": None, "collect_deadline": None}
            row = {"verification_id": verification_id, "source": source}
            sealed = seal_in(SourceResult, keyring, row, values)
            parameters[f"_source_{index}"] = source
            parameters |= {f"_set_{index}_{name}": value for name, value in sealed.items()}
            shape.append(tuple(sorted(sealed)))
        return tuple(shape), parameters

    async def count_awaiting_and_settle(
        self,
        verification_id: str,
        reading: Sequence[ColumnElement[Any]],
        outcomes: list[dict[str, Any]],
        *,
        parameters: Mapping[str, Any] | None = None,
    ) -> tuple[int, Sequence[Any], set[str]]:
        """`count_awaiting_reading` (with no change), then `settle_sources`: the count, the
        values read, and the sources stored; on PostgreSQL in one statement, a round trip
        fewer at the end of every run."""
        if not outcomes:
            left, looked_up = await self.count_awaiting_reading(
                verification_id, reading, parameters=parameters
            )
            return left, looked_up, set()
        if self.session.get_bind().dialect.name != "postgresql":
            # SQLite takes the whole database at the first write, so the order of the rows
            # does not matter there: the sources first (one pass each), then the count and
            # `reading`.
            stored = await self.settle_sources(verification_id, outcomes)
            result = await execute_prepared(
                self.session,
                _awaiting_select(tuple(reading)),
                {**(parameters or {}), THIS_VERIFICATION.key: verification_id},
            )
            row = result.first()
            if row is None:  # pragma: no cover - a verification being run exists
                return 0, (None,) * len(reading), stored
            return int(row[0]), tuple(row)[1:], stored
        shape, settling = self._settling(verification_id, outcomes, was="pending")
        result = await execute_prepared(
            self.session,
            _awaiting_settle_statement(tuple(reading), shape),
            {
                **(parameters or {}),
                **settling,
                THIS_VERIFICATION.key: verification_id,
                "_awaiting_change": 0,
            },
        )
        row = result.first()
        if row is None:  # pragma: no cover - a verification being run exists
            return 0, (None,) * len(reading), set()
        return int(row[0]), tuple(row)[1:-1], set(row[-1] or ())


def _unfinished() -> ColumnElement[bool]:
    """The verification is unfinished, for a statement built once: its values bound one by
    one, as `in_(UNFINISHED)` would not (an expanding parameter, which SQLAlchemy renders
    into the statement anew at every execution)."""
    status = VERIFICATIONS.c.status
    return status.in_([literal(value, status.type) for value in UNFINISHED])


def _claim_statement() -> Update:
    lease = VERIFICATIONS.c.lease_expires_at
    owner = bindparam("_claim_owner", type_=VERIFICATIONS.c.lease_owner.type)
    now = bindparam("_claim_now", type_=lease.type)
    return (
        update(VERIFICATIONS)
        .where(
            VERIFICATIONS.c.id == THIS_VERIFICATION,
            _unfinished(),
            or_(
                VERIFICATIONS.c.lease_owner.is_(None),
                VERIFICATIONS.c.lease_owner == owner,
                lease < now,
            ),
        )
        .values(
            status="running",
            started_at=func.coalesce(VERIFICATIONS.c.started_at, now),
            lease_owner=owner,
            lease_expires_at=bindparam("_claim_until", type_=lease.type),
        )
    )


# What a run reads of the verification it claims (`claim_reading`), in one row shape for
# the verification, its members and its sources (`_household_read`).
_CLAIMED_COLUMNS: tuple[Column[Any], ...] = tuple(
    VERIFICATIONS.c[name]
    for name in (
        "region_code",
        "program",
        "area",
        "as_of",
        "consent_document_id",
        "support_mode",
        "care_grade",
    )
)
_MEMBER_COLUMNS: tuple[Column[Any], ...] = tuple(
    MEMBERS.c[name]
    for name in (
        "position",
        "id_number_sealed",
        "name_sealed",
        "relation",
        "declared_monthly_income_sealed",
    )
)
_SOURCE_COLUMNS: tuple[Column[Any], ...] = tuple(
    SOURCE_RESULTS.c[name]
    for name in (
        "source",
        "status",
        "records_sealed",
        "fetched_at",
        "detail",
        "connector_version",
        "collects",
        "token_sealed",
    )
)
_VERIFICATION_PART = slice(1, 1 + len(_CLAIMED_COLUMNS))
_MEMBER_PART = slice(_VERIFICATION_PART.stop, _VERIFICATION_PART.stop + len(_MEMBER_COLUMNS))
_SOURCE_PART = slice(_MEMBER_PART.stop, _MEMBER_PART.stop + len(_SOURCE_COLUMNS))
_VERIFICATION_ROW, _MEMBER_ROW, _SOURCE_ROW = 0, 1, 2


def _household_read(verification_id: ColumnElement[str], claimed: CTE | None) -> CompoundSelect:
    """The members and the sources of `verification_id` (and the verification's own row
    from `claimed`, the claim's UPDATE), in the ORM's order: the verification, its members
    by position, its sources by name. Each row is its `kind`, then the verification's
    columns, a member's, a source's: NULL where the row has none, typed (PostgreSQL reads
    two untyped NULLs as text)."""

    def row(kind: int, *parts: tuple[ColumnElement[Any], ...] | None) -> list[Any]:
        columns: list[Any] = [literal_column(str(kind)).label("kind")]
        for part, named in zip(
            parts, (_CLAIMED_COLUMNS, _MEMBER_COLUMNS, _SOURCE_COLUMNS), strict=True
        ):
            for index, column in enumerate(named):
                value = null().cast(column.type) if part is None else part[index]
                columns.append(value.label(column.name))
        return columns

    members = select(*row(_MEMBER_ROW, None, _MEMBER_COLUMNS, None)).where(
        MEMBERS.c.verification_id == verification_id
    )
    sources = select(*row(_SOURCE_ROW, None, None, _SOURCE_COLUMNS)).where(
        SOURCE_RESULTS.c.verification_id == verification_id
    )
    parts = [members, sources]
    if claimed is not None:
        verification = tuple(claimed.c[column.name] for column in _CLAIMED_COLUMNS)
        parts.insert(0, select(*row(_VERIFICATION_ROW, verification, None, None)))
    return union_all(*parts).order_by(
        literal_column("kind"), literal_column("position"), literal_column("source")
    )


def _claim_reading_statement() -> CompoundSelect:
    claimed = _claim_statement().returning(VERIFICATIONS.c.id, *_CLAIMED_COLUMNS).cte("claimed")
    return _household_read(claimed.c.id, claimed)


def _verification_row(
    verification_id: str,
    claimed: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    keyring: Keyring,
) -> VerificationRow:
    """`claim_reading`'s rows as the ORM's objects would read: sealed values opened with
    the associated data the ORM's opening gives them (`Sealed.open`, `row_key_of`)."""
    members = []
    sources = []
    for row in rows:
        if row[0] == _MEMBER_ROW:
            position, id_number, name, relation, income = row[_MEMBER_PART]
            key = row_key_of(Member, {"verification_id": verification_id, "position": position})
            members.append(
                MemberRow(
                    id_number=Member.id_number.open(keyring, id_number, key),
                    name=Member.name.open(keyring, name, key),
                    relation=relation,
                    declared_monthly_income=Member.declared_monthly_income.open(
                        keyring, income, key
                    ),
                )
            )
            continue
        source, status, records, fetched_at, detail, version, collects, token = row[_SOURCE_PART]
        # A pending source holds no records (see `assessment_input`): not opened.
        if records is not None and status != "pending":
            key = row_key_of(SourceResult, {"verification_id": verification_id, "source": source})
            records = SourceResult.records.open(keyring, records, key)
        else:
            records = None
        sources.append(
            SourceRow(
                source=source,
                status=status,
                records=records,
                fetched_at=fetched_at,
                detail=detail,
                connector_version=version,
                collects=collects,
                token_sealed=token,
            )
        )
    region_code, program, area, as_of, consent_document_id, support_mode, care_grade = claimed
    return VerificationRow(
        id=verification_id,
        region_code=region_code,
        program=program,
        area=area,
        as_of=as_of,
        consent_document_id=consent_document_id,
        support_mode=support_mode,
        care_grade=care_grade,
        members=tuple(members),
        sources=tuple(sources),
    )


_GET = (
    select(Verification)
    .options(joinedload(Verification.members), joinedload(Verification.sources))
    .where(Verification.id == THIS_VERIFICATION)
    .execution_options(populate_existing=True)
)
"""`get`'s statement, the scope aside."""

IDEMPOTENCY_KEYS = cast(Table, IdempotencyKey.__table__)

_CLAIM = _claim_statement()
"""`claim`'s statement, built once (a worker claims every household it runs)."""
_CLAIM_READING = _claim_reading_statement()
"""`claim_reading`'s statement on PostgreSQL."""
_CLAIM_RETURNING = _claim_statement().returning(*_CLAIMED_COLUMNS)
_HOUSEHOLD_READ = _household_read(THIS_VERIFICATION, None)
"""`claim_reading`'s statements on SQLite."""


@lru_cache(maxsize=64)
def _awaiting_statement(reading: tuple[ColumnElement[Any], ...]) -> Update:
    """`count_awaiting_reading`'s statement: building and keying it for every run cost
    about 120 µs."""
    return _awaiting_update().returning(VERIFICATIONS.c.awaiting, *reading)


@lru_cache(maxsize=64)
def _awaiting_select(reading: tuple[ColumnElement[Any], ...]) -> Select[Any]:
    """`_awaiting_statement` without its change, read (SQLite: a write would rewrite the
    row for nothing)."""
    return select(VERIFICATIONS.c.awaiting, *reading).where(VERIFICATIONS.c.id == THIS_VERIFICATION)


def _awaiting_update() -> Update:
    return (
        update(VERIFICATIONS)
        .where(VERIFICATIONS.c.id == THIS_VERIFICATION)
        .values(awaiting=VERIFICATIONS.c.awaiting + bindparam("_awaiting_change", type_=Integer))
    )


@lru_cache(maxsize=64)
def _finish_statement(columns: tuple[str, ...], reading: tuple[ColumnElement[Any], ...]) -> Update:
    """`finish`'s statement, setting `columns` (and ending the lease): about 150 µs a
    verification to build and key, when built for each."""
    return _finish_update(columns).returning(VERIFICATIONS.c.id, *reading)


def _finish_update(columns: tuple[str, ...]) -> Update:
    return (
        update(VERIFICATIONS)
        .where(VERIFICATIONS.c.id == THIS_VERIFICATION, _unfinished())
        .values(
            lease_owner=None,
            lease_expires_at=None,
            **{
                name: bindparam(f"_finish_{name}", type_=VERIFICATIONS.c[name].type)
                for name in columns
            },
        )
    )


@lru_cache(maxsize=64)
def _finish_reporting_statement(
    columns: tuple[str, ...],
    reading: tuple[ColumnElement[Any], ...],
    report_columns: tuple[str, ...],
) -> Select[Any]:
    """`finish`'s statement with the report's INSERT (PostgreSQL): the UPDATE in a CTE, the
    INSERT in another that selects its parameters from the first's row, so that a
    verification that had ended already gets no report."""
    finished = (
        _finish_update(columns)
        .returning(
            VERIFICATIONS.c.id,
            *(expression.label(f"_read_{index}") for index, expression in enumerate(reading)),
        )
        .cte("finished")
    )
    report = (
        insert(REPORTS)
        .from_select(
            list(report_columns),
            select(
                *(
                    bindparam(f"_report_{name}", type_=REPORTS.c[name].type)
                    for name in report_columns
                )
            ).select_from(finished),
        )
        .cte("report")
    )
    return select(finished).add_cte(report)


@lru_cache(maxsize=64)
def _settle_one_statement(shape: tuple[tuple[str, ...], ...]) -> Update:
    """`_settle_update` of one source (`shape`: the columns it sets), returning nothing
    (SQLite's `executemany`)."""
    return _settle_update(shape)


@lru_cache(maxsize=64)
def _settle_statement(shape: tuple[tuple[str, ...], ...]) -> Update:
    """`settle_sources`'s statement (see `_settle_update`)."""
    return _settle_update(shape).returning(SOURCE_RESULTS.c.source)


def _settle_update(shape: tuple[tuple[str, ...], ...]) -> Update:
    """The conditional UPDATE that settles sources, one row per item of `shape` (the
    columns each sets), in one statement that returns the sources it stored: `UPDATE ...
    SET column = CASE source WHEN ... END ... WHERE source IN (...) AND status = ...
    RETURNING source`. A column some row does not set keeps its value there.

    Built once per shape (a few: answered, failed, parked; how many arrived together) and
    reused: building and keying a statement for each of a verification's six sources cost
    about 3 % of its CPU."""
    table = SOURCE_RESULTS
    sources = [
        bindparam(f"_source_{index}", type_=table.c.source.type) for index in range(len(shape))
    ]
    values: dict[str, Any] = {}
    for name in sorted({name for columns in shape for name in columns}):
        column = table.c[name]
        setting = [index for index, columns in enumerate(shape) if name in columns]
        if len(shape) == 1:
            values[name] = bindparam(f"_set_0_{name}", type_=column.type)
            continue
        # `CASE source WHEN ... THEN ...`: SQLite reads the row's source once per column,
        # not once per WHEN (13 % of the statement's own time for five sources).
        values[name] = case(
            {
                sources[index]: bindparam(f"_set_{index}_{name}", type_=column.type)
                for index in setting
            },
            value=table.c.source,
            else_=column,
        )
    return (
        update(table)
        .where(
            table.c.verification_id == bindparam("_verification_id"),
            table.c.source.in_(sources) if len(sources) > 1 else table.c.source == sources[0],
            table.c.status == bindparam("_was"),
        )
        .values(values)
    )


@lru_cache(maxsize=64)
def _awaiting_settle_statement(
    reading: tuple[ColumnElement[Any], ...], shape: tuple[tuple[str, ...], ...]
) -> Select[Any]:
    """`count_awaiting_reading` and `settle_sources` in one statement (PostgreSQL): the
    verification's UPDATE in a CTE, the sources' UPDATE in another joined to its row, so
    that no source's row is locked before the verification's (the order every run,
    collect and withdrawal keeps; see `withdraw`)."""
    counted = (
        _awaiting_update()
        .returning(
            VERIFICATIONS.c.id,
            VERIFICATIONS.c.awaiting,
            *(expression.label(f"_read_{index}") for index, expression in enumerate(reading)),
        )
        .cte("counted")
    )
    settled = (
        _settle_update(shape)
        .where(SOURCE_RESULTS.c.verification_id == counted.c.id)
        .returning(SOURCE_RESULTS.c.source)
        .cte("settled")
    )
    return select(
        counted.c.awaiting,
        *(counted.c[f"_read_{index}"] for index in range(len(reading))),
        select(func.array_agg(settled.c.source)).scalar_subquery(),
    )


def in_scope(statement: Statement, scope: Principal | str) -> Statement:
    """`statement` (over verifications) kept to `scope`'s households."""
    return scoped(statement, scope, Verification.region_code, Verification.township_code)


def _rowcount(result: Any) -> int:
    return int(result.rowcount)
