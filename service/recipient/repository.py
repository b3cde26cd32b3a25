"""All SQL about recipients and their re-checks."""

from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    case,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, aliased, selectinload

from schemas.recipient import RecipientFilter
from service.auth.principal import Principal
from service.auth.scope import Statement, scoped
from service.crypto.sealed import keyring_of, seal_in
from service.models import Decision, Member, Recheck, Recipient, Verification
from service.pagination import newer_first_after
from service.repository import Repository


def waits(status: str, retry_at: datetime | None, now: datetime) -> bool:
    """Whether a re-check in `status` is failed and waits for `retry_at` still."""
    return status == "failed" and retry_at is not None and retry_at > now


def in_scope(statement: Statement, scope: Principal | str) -> Statement:
    """`statement` (over recipients) kept to `scope`'s households."""
    return scoped(statement, scope, Recipient.region_code, Recipient.township_code)


ROLL_LOCK = 0x68656475  # "hedu": with a program's hash, PostgreSQL's lock on its roll

NOT_RUN = ("needs_consent", "failed", "returned")
"""The states of a re-check that did not run to its end, or whose report the approver
returned: a pass starts it (again), a failed one once its `retry_at` has come."""

RETRY_LATER = "retry_later"
"""What `rechecks_of` says of a failed re-check whose wait before a retry has not ended."""

RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(days=1)


def retry_delay(failures: int) -> timedelta:
    """How long a re-check that has failed `failures` times waits before a pass starts it
    again: 5 minutes after the first failure, doubling, at most a day. A failure is a
    bug or a policy missing, not a partner's (those make a `review` report): asking the
    partners again every pass would only repeat it. (One refused at intake asked nobody:
    it is tried again at every pass.)"""
    return min(RETRY_FIRST * 2 ** min(max(failures - 1, 0), 16), RETRY_MAX)


class RecipientRepository(Repository):
    @staticmethod
    def place_of(recipient_id: str) -> ScalarSelect[str]:
        """The place of a recipient's household (its township's code, else its county's),
        as a subquery to write within an audit record about it: no round trip of its own."""
        return (
            select(func.coalesce(Recipient.township_code, Recipient.region_code))
            .where(Recipient.id == recipient_id)
            .scalar_subquery()
        )

    def _scoped(self, scope: Principal | str) -> Select[Any]:
        return in_scope(select(Recipient), scope)

    async def get(self, recipient_id: str, *, scope: Principal | str = "") -> Recipient | None:
        return await self.session.scalar(self._scoped(scope).where(Recipient.id == recipient_id))

    async def by_origin(self, verification_id: str) -> Recipient | None:
        return await self.session.scalar(
            select(Recipient).where(Recipient.origin_verification_id == verification_id)
        )

    async def hold_the_roll(self) -> None:
        """Until this transaction ends, no other can put a household on a roll (dibao's or
        tekun's: a person is on one of them at most): the look for a member on them
        (`member_on_the_roll`) and the new recipient are one step (approvals are people's
        decisions, a few a minute: waiting for one another costs nothing)."""
        await self._one_at_a_time(ROLL_LOCK, "roll", Recipient)

    async def member_on_the_roll(
        self, verification_id: str, programs: Collection[str], *, besides: str | None = None
    ) -> tuple[Member, Recipient] | None:
        """A member of `verification_id` who is in the approved household of a recipient of
        one of `programs` still on the roll (active or under review), in any region, with
        that recipient; None if none is (the usual case: one indexed lookup per member).
        `besides`: a recipient whose household does not count (the one a change replaces)."""
        statement = members_on_the_roll(verification_id, programs)
        if besides is not None:
            statement = statement.where(Recipient.id != besides)
        row = (await self.session.execute(statement.limit(1))).first()
        return None if row is None else (row[0], row[1])

    async def households(self, verification_id: str, other_id: str) -> tuple[set[str], set[str]]:
        """The members of each verification, by the blind index of their ID numbers: one
        read for both."""
        rows = await self.session.execute(
            select(Member.verification_id, Member.id_number_blind).where(
                Member.verification_id.in_((verification_id, other_id))
            )
        )
        members: dict[str, set[str]] = {verification_id: set(), other_id: set()}
        for owner, blind in rows:
            members[owner].add(blind)
        return members[verification_id], members[other_id]

    async def household_settled_at(self, recipient: Recipient) -> datetime | None:
        """When the household on the roll was last looked at: its approval's decision, or a
        re-check of it started since, whichever is later. A verification made before then
        holds older facts than the roll's."""
        decided = select(func.max(Decision.decided_at)).where(
            Decision.verification_id == recipient.approved_verification_id
        )
        started = select(func.max(Recheck.started_at)).where(Recheck.recipient_id == recipient.id)
        moments = (
            await self.session.execute(select(decided.scalar_subquery(), started.scalar_subquery()))
        ).one()
        known = [moment for moment in moments if moment is not None]
        return max(known) if known else None

    async def household_changed_since(self, recipient_id: str, since: datetime) -> bool:
        """Whether an approval replaced the recipient's household (its members changed)
        after `since`."""
        changed = select(Decision.id).where(
            Decision.recipient_id == recipient_id,
            Decision.decision == "approve",
            Decision.decided_at > since,
        )
        return bool(await self.session.scalar(select(changed.exists())))

    async def add(self, recipient: Recipient) -> None:
        self.session.add(recipient)
        await self.session.flush()

    async def page(
        self,
        *,
        scope: Principal | str,
        where: RecipientFilter,
        limit: int,
        after: tuple[datetime, str] | None,
        today: date,
    ) -> list[Recipient]:
        statement = self._scoped(scope)
        if where.reference is not None:
            statement = statement.where(Recipient.reference == where.reference)
        if where.needs_new_consent is not None:
            needs = _needs_new_consent(today)
            statement = statement.where(needs if where.needs_new_consent else ~needs)
        if where.program is not None:
            statement = statement.where(Recipient.program == where.program)
        if where.recheck_class is not None:
            statement = statement.where(Recipient.recheck_class == where.recheck_class.value)
        if where.status is not None:
            statement = statement.where(Recipient.status == where.status.value)
        if where.due_before is not None:
            # One who left is re-checked no more, whatever date was last planned.
            statement = statement.where(
                Recipient.next_recheck_on <= where.due_before, Recipient.status != "left"
            )
        if after is not None:
            statement = statement.where(
                newer_first_after(Recipient.created_at, Recipient.id, after)
            )
        statement = statement.order_by(Recipient.created_at.desc(), Recipient.id.desc())
        return list((await self.session.scalars(statement.limit(limit))).all())

    async def members(self, verification_ids: list[str]) -> dict[str, list[Member]]:
        """The members of each verification, in their order."""
        if not verification_ids:
            return {}
        rows = await self.session.scalars(
            select(Member)
            .where(Member.verification_id.in_(verification_ids))
            .order_by(Member.verification_id, Member.position)
        )
        grouped: dict[str, list[Member]] = {}
        for member in rows:
            grouped.setdefault(member.verification_id, []).append(member)
        return grouped

    async def awaiting_consent(self, recipient_ids: list[str]) -> set[str]:
        """Those of these recipients with a re-check held for a new authorization."""
        if not recipient_ids:
            return set()
        rows = await self.session.scalars(
            select(Recheck.recipient_id)
            .where(Recheck.recipient_id.in_(recipient_ids))
            .where(Recheck.status == "needs_consent")
        )
        return set(rows)

    async def update(self, recipient_id: str, **values: Any) -> None:
        """Change a recipient's columns; a new benefit is sealed to its row."""
        if "monthly_benefit" in values:
            values = seal_in(Recipient, keyring_of(self.session), {"id": recipient_id}, values)
        await self.session.execute(
            update(Recipient).where(Recipient.id == recipient_id).values(**values)
        )

    # Re-checks

    async def due(
        self, today: date, *, region_prefix: str, limit: int, after: str | None = None
    ) -> list[Recipient]:
        """Recipients on the roll whose re-check is due on or before `today`, by id."""
        statement = (
            self._scoped(region_prefix)
            .where(Recipient.status != "left")
            .where(Recipient.next_recheck_on <= today)
        )
        if after is not None:
            statement = statement.where(Recipient.id > after)
        return list(
            (await self.session.scalars(statement.order_by(Recipient.id).limit(limit))).all()
        )

    async def count_due(self, today: date, *, region_prefix: str) -> int:
        return int(
            await self.session.scalar(
                in_scope(select(func.count()).select_from(Recipient), region_prefix)
                .where(Recipient.status != "left")
                .where(Recipient.next_recheck_on <= today)
            )
            or 0
        )

    async def next_due(self, today: date, *, region_prefix: str) -> date | None:
        """The earliest re-check due after `today` on the roll in `region_prefix`."""
        found = await self.session.scalar(
            in_scope(select(func.min(Recipient.next_recheck_on)), region_prefix)
            .where(Recipient.status != "left")
            .where(Recipient.next_recheck_on > today)
        )
        return cast(date | None, found)

    async def insert_recheck(self, values: dict[str, Any], *, hold: bool = False) -> bool:
        """Insert a re-check unless one exists for the recipient and due date; whether this
        call inserted it. Concurrent callers wait for each other at the unique key. With
        `hold` (the authorization on record has expired), an existing one that failed or
        was returned is held for a new one (`needs_consent`) by the same statement; a
        running or finished one is left as it is."""
        statement = self._insert(Recheck).values(**values)
        keys = ["recipient_id", "due_on"]
        if hold:
            upsert = statement.on_conflict_do_update(
                index_elements=keys,
                set_={"status": "needs_consent", "retry_at": None},
                where=Recheck.status.in_([s for s in NOT_RUN if s != "needs_consent"]),
            )
            result = await self.session.execute(upsert)
        else:
            quiet = statement.on_conflict_do_nothing(index_elements=keys)
            result = await self.session.execute(quiet)
        return bool(getattr(result, "rowcount", 0))

    async def recheck(self, recipient_id: str, due_on: date) -> Recheck | None:
        return await self.session.scalar(
            select(Recheck).where(Recheck.recipient_id == recipient_id, Recheck.due_on == due_on)
        )

    async def rechecks_of(self, due: list[tuple[str, date]], now: datetime) -> dict[str, str]:
        """The status of the re-check each (recipient, due date) has, for those that have
        one; `RETRY_LATER` for a failed one whose `retry_at` is after `now`."""
        if not due:
            return {}
        rows = await self.session.execute(
            select(Recheck.recipient_id, Recheck.status, Recheck.retry_at).where(
                tuple_(Recheck.recipient_id, Recheck.due_on).in_(due)
            )
        )
        return {
            str(recipient_id): RETRY_LATER if waits(status, retry_at, now) else str(status)
            for recipient_id, status, retry_at in rows
        }

    @staticmethod
    def runs_a_recheck(verification_id: str | ColumnElement[str]) -> ColumnElement[bool]:
        """Whether the verification runs a re-check, as an expression to read within
        another statement."""
        return select(Recheck.id).where(Recheck.verification_id == verification_id).exists()

    async def recheck_of(self, verification_id: str) -> tuple[Recheck, Recipient] | None:
        """The re-check a verification runs, with its recipient (one statement)."""
        row = (
            await self.session.execute(
                select(Recheck, Recipient)
                .join(Recipient, Recipient.id == Recheck.recipient_id)
                .where(Recheck.verification_id == verification_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def later_recheck_started(
        self, recipient_id: str, due_on: date, *, reported: bool = False
    ) -> bool:
        """Whether a re-check of this recipient due after `due_on` has started; with
        `reported`, only one whose verification has completed (it has a report to decide:
        one that failed, or was withdrawn and waits for a new authorization, has none)."""
        later = _later_started(recipient_id, due_on)
        if reported:
            later = later.join(Verification, Verification.id == Recheck.verification_id).where(
                Verification.status == "completed"
            )
        return bool(await self.session.scalar(select(later.exists())))

    async def start_recheck(
        self,
        recheck_id: str,
        *,
        verification_id: str,
        now: datetime,
        held: bool,
        batch_id: str | None = None,
    ) -> bool:
        """Attach the verification to a re-check that has none yet (or, when `held`, one
        that did not run, held for a new authorization or failed, or whose report was
        returned); whether this call did it."""
        statement = update(Recheck).where(Recheck.id == recheck_id)
        if held:
            statement = statement.where(Recheck.status.in_(NOT_RUN))
        else:
            statement = statement.where(Recheck.verification_id.is_(None))
        result = await self.session.execute(
            statement.values(
                status="queued",
                verification_id=verification_id,
                started_at=now,
                completed_at=None,
                batch_id=batch_id,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def advance(self, recipient_id: str, due_on: date, next_on: date, now: datetime) -> None:
        """Schedule the next re-check, unless another run did already."""
        await self.session.execute(
            update(Recipient)
            .where(Recipient.id == recipient_id, Recipient.next_recheck_on == due_on)
            .values(next_recheck_on=next_on, updated_at=now)
        )

    async def finish_recheck(self, recheck_id: str, status: str, now: datetime) -> bool:
        """End a running re-check; whether this call did (not when it had ended)."""
        result = await self.session.execute(
            update(Recheck)
            .where(Recheck.id == recheck_id, Recheck.status == "queued")
            .values(status=status, completed_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    async def fail_recheck(self, recheck: Recheck, now: datetime) -> None:
        """A running re-check's verification failed: the re-check fails, its failure counted
        and when it may be started again set (`retry_delay`), and its recipient is due
        again on the date it was due, so a pass starts it again (the date had moved on when
        this one started) once that wait has ended."""
        failures = recheck.failures + 1  # only the run holding it, `queued`, changes it
        result = await self.session.execute(
            update(Recheck)
            .where(Recheck.id == recheck.id, Recheck.status == "queued")
            .values(
                status="failed",
                completed_at=now,
                failures=failures,
                retry_at=now + retry_delay(failures),
            )
        )
        if getattr(result, "rowcount", 0):
            await self._due_again(recheck, now)

    async def withdraw_recheck(
        self, recheck: Recheck, now: datetime, today: date, *, undecided: bool = False
    ) -> None:
        """A running re-check's verification (or, `undecided`, a finished one that no
        decision has ruled on) was withdrawn, perhaps with the household's consent: the
        recipient's authorization ends (it expired yesterday), the re-check is held for a
        new one (`needs_consent`), and the recipient is due again on the date it was due;
        the first pass after a new authorization is recorded starts it."""
        held = await self.finish_recheck(recheck.id, "needs_consent", now)
        if not held and undecided:
            result = await self.session.execute(
                update(Recheck)
                .where(Recheck.id == recheck.id, Recheck.status == "completed")
                .values(status="needs_consent")
            )
            held = bool(getattr(result, "rowcount", 0))
        if not held:
            return
        await self._due_again(recheck, now)
        await self.session.execute(
            update(Recipient)
            .where(Recipient.id == recheck.recipient_id)
            .values(_consent_withdrawn(today, now))
        )

    async def return_recheck(self, recheck: Recheck, now: datetime) -> None:
        """The approver returned a finished re-check's report without a ruling: the
        re-check is `returned`, and its recipient is due again on the date it was due, so
        the next pass starts it again (a new verification, on the same row) for the
        approver to decide on."""
        result = await self.session.execute(
            update(Recheck)
            .where(Recheck.id == recheck.id, Recheck.status == "completed")
            .values(status="returned")
        )
        if getattr(result, "rowcount", 0):
            await self._due_again(recheck, now)

    async def end_review(self, recheck: Recheck, now: datetime) -> None:
        """A re-check ended needing no approval: its recipient, if under review, is active
        again, unless a later re-check has started since (its report decides)."""
        await self.session.execute(
            update(Recipient)
            .where(
                Recipient.id == recheck.recipient_id,
                Recipient.status == "under_review",
                ~_later_started(recheck.recipient_id, recheck.due_on).exists(),
            )
            .values(status="active", updated_at=now)
        )

    async def end_consent_of(self, verification_id: str, now: datetime, today: date) -> None:
        """A finished verification was withdrawn, perhaps with the household's consent: the
        authorization of the recipient it made, confirmed or re-checked ends (it expired
        yesterday), so that no re-check asks a partner until a new one is recorded."""
        rechecked = select(Recheck.recipient_id).where(Recheck.verification_id == verification_id)
        await self.session.execute(
            update(Recipient)
            .where(
                or_(
                    Recipient.origin_verification_id == verification_id,
                    Recipient.approved_verification_id == verification_id,
                    Recipient.id.in_(rechecked),
                ),
                Recipient.status != "left",
            )
            .values(_consent_withdrawn(today, now))
        )

    async def end_cancelled_rechecks(self, batch_id: str, now: datetime) -> int:
        """The batch was cancelled: each re-check whose verification was cancelled with it
        (nobody had started it) ends `failed` with no failure counted and no wait (nobody
        was asked, as for one refused at intake), and its recipient is due again on the
        date it was due, so the next pass starts it again; how many. A re-check running
        when its batch was cancelled ends with its run. Two statements however many."""
        cancelled = select(Verification.id).where(
            Verification.batch_id == batch_id, Verification.status == "cancelled"
        )
        stranded = (Recheck.status == "queued", Recheck.verification_id.in_(cancelled))
        due_on = (
            select(func.min(Recheck.due_on))
            .where(Recheck.recipient_id == Recipient.id, *stranded)
            .correlate(Recipient)
            .scalar_subquery()
        )
        await self.session.execute(
            update(Recipient)
            .where(
                Recipient.id.in_(select(Recheck.recipient_id).where(*stranded)),
                Recipient.next_recheck_on > due_on,
            )
            .values(next_recheck_on=due_on, updated_at=now)
        )
        result = await self.session.execute(
            update(Recheck)
            .where(*stranded)
            .values(status="failed", completed_at=now, retry_at=None)
        )
        return int(getattr(result, "rowcount", 0))

    async def _due_again(self, recheck: Recheck, now: datetime) -> None:
        await self.session.execute(
            update(Recipient)
            .where(
                Recipient.id == recheck.recipient_id,
                Recipient.next_recheck_on > recheck.due_on,
            )
            .values(next_recheck_on=recheck.due_on, updated_at=now)
        )

    async def unfinished_rechecks(self, *, region_prefix: str = "") -> int:
        return int(
            await self.session.scalar(
                scoped(
                    select(func.count()).select_from(Recheck).where(Recheck.status == "queued"),
                    region_prefix,
                    Recheck.region_code,
                )
            )
            or 0
        )

    async def verifications(self, verification_ids: list[str]) -> dict[str, Verification]:
        """These verifications by id, with their members (two statements however many)."""
        if not verification_ids:
            return {}
        rows = await self.session.scalars(
            select(Verification)
            .options(selectinload(Verification.members))
            .where(Verification.id.in_(verification_ids))
        )
        return {row.id: row for row in rows}


def _later_started(recipient_id: str, due_on: date) -> Select[str]:
    """The re-checks of this recipient due after `due_on` that have started."""
    return select(Recheck.id).where(
        Recheck.recipient_id == recipient_id,
        Recheck.due_on > due_on,
        Recheck.verification_id.is_not(None),
    )


def members_on_the_roll(
    verification_id: str | ColumnElement[str] | InstrumentedAttribute[str],
    programs: Collection[str],
) -> Select[Member, Recipient]:
    """The members of the verification who are in the approved household of a recipient
    of one of `programs` still on the roll, in any region, with that recipient: one indexed
    lookup per member (blind index, then `approved_verification_id`). `verification_id`
    may be a column of an enclosing statement (correlated)."""
    ours, theirs = aliased(Member), aliased(Member)
    return (
        select(ours, Recipient)
        .join(theirs, theirs.id_number_blind == ours.id_number_blind)
        .join(Recipient, Recipient.approved_verification_id == theirs.verification_id)
        .where(
            ours.verification_id == verification_id,
            Recipient.program.in_(sorted(programs)),
            Recipient.status != "left",
        )
    )


def approved_on_the_roll(
    verification_id: ColumnElement[str] | InstrumentedAttribute[str],
) -> ColumnElement[bool]:
    """The verification (a column of the enclosing statement) is the approved one of a
    household on the roll: what its re-checks compare with (a lookup on
    `ix_recipients_approved_verification_id`)."""
    return exists().where(
        Recipient.approved_verification_id == verification_id, Recipient.status != "left"
    )


def _needs_new_consent(today: date) -> ColumnElement[bool]:
    """`needs_new_consent` of the recipients' views, as SQL: on the roll, and the
    authorization ended (`authorization_expired`) or a re-check held for one."""
    held = exists().where(Recheck.recipient_id == Recipient.id, Recheck.status == "needs_consent")
    ended = Recipient.consent_expires_on.is_not(None) & (Recipient.consent_expires_on < today)
    return (Recipient.status != "left") & or_(ended, held)


def _consent_withdrawn(today: date, now: datetime) -> dict[Any, Any]:
    """The values of a recipient whose authorization was withdrawn `today`: it ended
    yesterday (unless it had ended before), and the withdrawal's day is kept, before which
    no renewal may be signed."""
    ended = today - timedelta(days=1)
    return {
        Recipient.consent_expires_on: case(
            (
                or_(Recipient.consent_expires_on.is_(None), Recipient.consent_expires_on > ended),
                ended,
            ),
            else_=Recipient.consent_expires_on,
        ),
        Recipient.consent_withdrawn_on: today,
        Recipient.updated_at: now,
    }
