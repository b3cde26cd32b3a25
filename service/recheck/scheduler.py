"""Starting the re-checks that are due, exactly once each, however many processes try.

Knows nothing of when it is called (the periodic loop, `hedui recheck`, a test): each call
looks at the recipients due on `today` and, for each, inserts the re-check keyed by
recipient and due date. The unique key decides who starts it: a second scheduler's insert
does nothing (on PostgreSQL it waits for the first one's transaction and then finds the
row). The re-check's verification is created through the same service intake uses, with
its job, in the same transaction, and the recipient's next due date moves past `today`, so
a run that catches up after a pause makes one re-check, not one per missed period.

A re-check that did not run is never left standing in the way: one held for a new
authorization (`needs_consent`: it had expired, or the re-check was withdrawn) or
`failed` (refused here, its verification failed, or was cancelled with its batch) is
started again, on the same row, by the next pass that can (a withdrawn, failed or
cancelled one puts the recipient's due date back where it was); so is one whose report
the approver returned without a ruling (`returned`, its due date put back likewise). Only
a running one is "already scheduled".

Throttled: at most `max_in_flight` re-checks run at once (per-partner limits apply to each
call as for every verification).

Grouped: the re-checks of one region (county code) started for one day are one batch
(`kind: recheck`, keyed by region and day, so every pass and every process adds to the same
one while it is open), seen and followed like any batch (`GET /v1/batches/{id}`). A pass
that has gone through everything due closes that day's batches; each is completed, with
`batch.completed`, when its last re-check ends. A batch closed or cancelled takes no more:
a later pass of that day (a re-check started again, a recipient approved since) starts
the day's next batch.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import cast

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas import batch as batch_wire
from schemas import verification as verification_wire
from schemas.recipient import RecheckPlanItem, RecheckRun, RecheckStatus
from service.audit.actions import APIKEY_CREATE, RECHECK_RUN
from service.audit.service import Actor
from service.audit.service import audit as audit_service
from service.auth.principal import Principal, Role
from service.auth.repository import ApiKeyRepository
from service.batch.repository import BatchRepository
from service.db import WriteGate
from service.errors import HeduiError
from service.jobs.queue import RunQueue
from service.models import ApiKey, Recipient, Verification
from service.models.base import new_id, utcnow
from service.policy.catalog import PolicyCatalog
from service.recipient.calendar import authorization_expired, next_after
from service.recipient.repository import NOT_RUN, RETRY_LATER, RecipientRepository, waits
from service.recipient.service import policy_for
from service.verification.service import verification as verification_service

log = structlog.get_logger(__name__)

SCHEDULER_KEY_NAME = "re-check scheduler"
"""The API key re-check verifications are created under (it has no usable token)."""
SCHEDULER_KEY_REASON = (
    "internal: the identity re-checks are started under; it has no token and never had one"
)

_JOIN_ATTEMPTS = 5
"""How often a chunk looks again for an open batch of its day, when the one it found was
closed or cancelled before it could join (each time by another process or a caller)."""


def _batch_key(region_code: str, day: str, before: int) -> str:
    """The idempotency key of the re-check batch of `region_code` for `day` that follows
    `before` others of that region and day (the first keeps the key it always had)."""
    return f"recheck:{region_code}:{day}" if not before else f"recheck:{region_code}+{before}:{day}"


@dataclass
class Pass:
    """What one pass did, in counts: its size does not grow with the roll."""

    started: list[Verification] = field(default_factory=list)
    """The verifications it created (at most the pass's room, `max_in_flight`)."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Recipients gone through, by outcome (`queued`, `needs_consent`, ...)."""
    batches: set[str] = field(default_factory=set)
    """The re-check batches this pass added to (one open at a time per region and day)."""
    after: str | None = None
    """The last recipient (by id) this pass went through: where the next one goes on."""
    exhausted: bool = False
    """It went through every recipient due (after the one it started after)."""

    def count(self, outcome: str) -> int:
        return self.outcomes[outcome]


class RecheckScheduler:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        catalog: PolicyCatalog,
        queue: RunQueue,
        write_gate: WriteGate,
        sources: Callable[[], list[tuple[str, str]]],
        *,
        max_in_flight: int = 200,
        chunk: int = 100,
    ) -> None:
        self.session_factory = session_factory
        self.catalog = catalog
        self.queue = queue
        self.write_gate = write_gate
        self.sources = sources
        self.max_in_flight = max_in_flight
        self.chunk = chunk
        self._principal: Principal | None = None

    async def count_due(self, today: date, *, region_prefix: str = "") -> int:
        async with self.session_factory() as session:
            return await RecipientRepository.from_session(session).count_due(
                today, region_prefix=region_prefix
            )

    async def next_due(self, today: date, *, region_prefix: str = "") -> date | None:
        """When the next re-check after `today` is due (None: nobody is on the roll)."""
        async with self.session_factory() as session:
            return await RecipientRepository.from_session(session).next_due(
                today, region_prefix=region_prefix
            )

    async def preview(self, today: date, *, region_prefix: str = "", limit: int = 50) -> RecheckRun:
        """What a pass would do now, counted over every recipient due, with the first
        `limit` of them listed; nothing is written. Read a chunk at a time."""
        items: list[RecheckPlanItem] = []
        outcomes: Counter[str] = Counter()
        after: str | None = None
        async with self.session_factory() as session:
            repository = RecipientRepository.from_session(session)
            while True:
                due = await repository.due(
                    today, region_prefix=region_prefix, limit=self.chunk, after=after
                )
                if not due:
                    break
                after = due[-1].id
                existing = await repository.rechecks_of(
                    [(recipient.id, recipient.next_recheck_on) for recipient in due], utcnow()
                )
                for recipient in due:
                    held = existing.get(recipient.id)
                    if _consent_expired(recipient, today):
                        outcome = RecheckStatus.needs_consent.value
                    elif held == RETRY_LATER:
                        outcome = RETRY_LATER
                    elif held is not None and held not in NOT_RUN:
                        outcome = "already_scheduled"
                    else:
                        outcome = RecheckStatus.queued.value
                    outcomes[outcome] += 1
                    if len(items) < limit:
                        items.append(_item(recipient, outcome))
                session.expunge_all()
        return RecheckRun(
            as_of=today,
            dry_run=True,
            queued=outcomes[RecheckStatus.queued.value],
            needs_consent=outcomes[RecheckStatus.needs_consent.value],
            already_scheduled=outcomes["already_scheduled"],
            retry_later=outcomes[RETRY_LATER],
            items=items,
        )

    async def run_due(
        self,
        today: date,
        *,
        region_prefix: str = "",
        limit: int | None = None,
        after: str | None = None,
        actor: Actor | None = None,
    ) -> Pass:
        """Start the due re-checks this pass has room for (`max_in_flight` minus those
        running), going through the due recipients by id from just after `after`; their
        runs start when each chunk has committed. A pass that reaches the end of the
        recipients due closes that day's batches. Each re-check started is an audit event
        `recheck.run` by `actor` (an operator at the command line; None: the scheduler)."""
        done = Pass(after=after)
        async with self.session_factory() as session:
            running = await RecipientRepository.from_session(session).unfinished_rechecks()
        room = max(0, self.max_in_flight - running)
        if limit is not None:
            room = min(room, limit)
        while room > 0:
            async with self.write_gate, self.session_factory() as session:
                due = await RecipientRepository.from_session(session).due(
                    today,
                    region_prefix=region_prefix,
                    limit=min(self.chunk, room),
                    after=done.after,
                )
                if not due:
                    done.exhausted = True
                    break
                done.after = due[-1].id
                started = await self._start_chunk(session, due, today, done, actor)
                await session.commit()
            for verification in started:
                self.queue.committed(verification)
            done.started.extend(started)
            room -= len(started)
        if done.exhausted:
            await self._close_batches(today, region_prefix)
        if done.started:
            log.info("rechecks_started", count=len(done.started), as_of=today.isoformat())
        return done

    async def _close_batches(self, today: date, region_prefix: str) -> None:
        """Everything due on `today` in `region_prefix` has been through a pass: that
        day's re-check batches there take no more, and complete when their runs end."""
        async with self.write_gate, self.session_factory() as session:
            # No scheduler key yet: no re-check was ever started, no batch is open (and a
            # pass with nothing to do makes no key).
            scheduler = await ApiKeyRepository.from_session(session).named(SCHEDULER_KEY_NAME)
            if scheduler is None:
                return
            repository = BatchRepository.from_session(session)
            ids = await repository.open_of(
                scheduler.id, f"recheck:{region_prefix}", f":{today.isoformat()}"
            )
            await repository.close_open(ids, utcnow())
            await session.commit()

    async def _join_batch(
        self, session: AsyncSession, region_code: str, today: date, count: int
    ) -> tuple[str, int]:
        """A re-check batch of `region_code` for `today` that takes `count` more re-checks,
        and the first of their line numbers: the day's open batch, or, once the day's
        batches are all closed, cancelled or completed, a new one. Each is keyed by region,
        day and how many that day had before it, so every process makes the same next one
        (the unique key decides who inserts it)."""
        scheduler = await self._scheduler(session, None)
        repository = BatchRepository.from_session(session)
        day = today.isoformat()
        for _ in range(_JOIN_ATTEMPTS):
            batches = await repository.keyed_like(
                scheduler.key_id,
                _batch_key(region_code, day, 0),
                prefix=f"recheck:{region_code}+",
                suffix=f":{day}",
            )
            open_ids = [i for i, status in batches if status == batch_wire.BatchStatus.open.value]
            batch_id = (
                open_ids[0]
                if open_ids
                else await self._new_batch(
                    session, scheduler.key_id, region_code, day, len(batches)
                )
            )
            first = await repository.take_lines(batch_id, count)
            if first is not None:
                return batch_id, first
            # Closed or cancelled since it was read: the next attempt finds or makes another.
        raise RuntimeError(f"no open re-check batch of {region_code} for {day}")

    async def _new_batch(
        self, session: AsyncSession, created_by: str, region_code: str, day: str, before: int
    ) -> str:
        """The id of the day's batch after `before` others (made unless another process did)."""
        return await BatchRepository.from_session(session).get_or_add(
            {
                "id": new_id(),
                "reference": f"re-checks {region_code} {day}"
                + (f" ({before + 1})" if before else ""),
                "kind": batch_wire.BatchKind.recheck.value,
                "region_prefix": region_code,
                "created_by": created_by,
                "idempotency_key": _batch_key(region_code, day, before),
                "status": batch_wire.BatchStatus.open.value,
                "lines_received": 0,
                "households": 0,
                "invalid_lines": 0,
                "created_at": utcnow(),
            }
        )

    async def _start_chunk(
        self,
        session: AsyncSession,
        due: list[Recipient],
        today: date,
        done: Pass,
        actor: Actor | None,
    ) -> list[Verification]:
        """Start the re-checks of a chunk of due recipients (the caller commits): each
        re-check row decides, then the chunk's verifications are stored together, each
        region's joining its batch with one count."""
        repository = RecipientRepository.from_session(session)
        approved = await repository.verifications(
            [r.approved_verification_id for r in due if not _consent_expired(r, today)]
        )
        starting: list[tuple[Recipient, str, bool, Verification]] = []
        for recipient in due:
            recheck_id, held, outcome = await self._claim(session, recipient, today)
            if recheck_id is None:
                done.outcomes[outcome] += 1
                continue
            verification = await self._verification(
                session, recipient, approved.get(recipient.approved_verification_id), today, actor
            )
            if verification is None:
                # Refused at intake: nobody was asked, so the next pass tries again at once
                # (a policy file put back takes effect there); only a failed run waits.
                await repository.finish_recheck(recheck_id, RecheckStatus.failed.value, utcnow())
                done.outcomes[RecheckStatus.failed.value] += 1
                continue
            starting.append((recipient, recheck_id, held, verification))
        if not starting:
            return []
        by_region: dict[str, list[Verification]] = {}
        for recipient, _, _, verification in starting:
            by_region.setdefault(recipient.region_code, []).append(verification)
        for region_code, verifications in by_region.items():
            batch_id, first = await self._join_batch(
                session, region_code, today, len(verifications)
            )
            for offset, verification in enumerate(verifications):
                verification.batch_id, verification.batch_line = batch_id, first + offset
            done.batches.add(batch_id)
        started = [verification for _, _, _, verification in starting]
        # Run here: inserted claimed, no statement more each; otherwise queued after it.
        claim = self.queue.claim_at_insert()
        await verification_service.store_many(session, started, claim=claim)
        for recipient, recheck_id, held, verification in starting:
            if not await repository.start_recheck(
                recheck_id,
                verification_id=verification.id,
                now=utcnow(),
                held=held,
                batch_id=verification.batch_id,
            ):  # pragma: no cover - the insert (or the held row's update) decided already
                raise RuntimeError("re-check taken by another scheduler")
            if not claim:
                await self.queue.enqueue(session, verification)
            # It asks partners about the household's members: the trail says who started it.
            await audit_service.record(
                session,
                actor or await self._actor(session),
                RECHECK_RUN,
                object_type="verification",
                object_id=verification.id,
                object_region=verification.township_code or verification.region_code,
                detail=f"recipient {recipient.id}, due {recipient.next_recheck_on}",
            )
            parameters = policy_for(self.catalog, recipient, today)
            months = (
                parameters.parameters.recheck_months(recipient.recheck_class) if parameters else 12
            )
            due_on = recipient.next_recheck_on
            await repository.advance(
                recipient.id,
                due_on,
                next_after(due_on, months, today, recipient.recheck_day),
                utcnow(),
            )
        done.outcomes[RecheckStatus.queued.value] += len(started)
        return started

    async def _claim(
        self, session: AsyncSession, recipient: Recipient, today: date
    ) -> tuple[str | None, bool, str]:
        """Insert the recipient's re-check for its due date: (its id, whether it is one
        that did not run, held for a new authorization or failed, or was returned, the
        outcome), the id None unless this call is to start it."""
        repository = RecipientRepository.from_session(session)
        due_on = recipient.next_recheck_on
        expired = _consent_expired(recipient, today)
        recheck_id = new_id()
        inserted = await repository.insert_recheck(
            {
                "id": recheck_id,
                "recipient_id": recipient.id,
                "due_on": due_on,
                "region_code": recipient.region_code,
                "status": (RecheckStatus.needs_consent if expired else RecheckStatus.queued).value,
                "created_at": utcnow(),
            },
            # One that failed or was returned is held the same way.
            hold=expired,
        )
        if expired:
            return None, False, RecheckStatus.needs_consent.value
        if inserted:
            return recheck_id, False, RecheckStatus.queued.value
        existing = await repository.recheck(recipient.id, due_on)
        if existing is None or existing.status not in NOT_RUN:
            return None, False, "already_scheduled"
        if waits(existing.status, existing.retry_at, utcnow()):
            return None, False, RETRY_LATER
        return existing.id, True, RecheckStatus.queued.value

    def _verification_body(
        self, recipient: Recipient, approved: Verification, today: date
    ) -> verification_wire.VerificationCreate:
        return verification_wire.VerificationCreate(
            reference=recipient.reference,
            program=cast(verification_wire.Program, recipient.program),
            region_code=recipient.region_code,
            township_code=recipient.township_code,
            area=cast(verification_wire.Area, recipient.area),
            as_of=today,
            # The recipient's current authorization, as stored: one recorded before document
            # ids were bounded is not refused here (its header is encoded when it is sent).
            consent=verification_wire.Consent.model_construct(
                document_id=recipient.consent_document_id, signed_on=recipient.consent_signed_on
            ),
            members=[
                verification_wire.MemberCreate(
                    id_number=member.id_number,
                    name=member.name,
                    relation=cast(verification_wire.Relation, member.relation),
                    declared_monthly_income=member.declared_monthly_income,
                )
                for member in approved.members
            ],
            support_mode=cast(verification_wire.SupportMode | None, approved.support_mode),
            care_grade=cast(verification_wire.CareGrade | None, approved.care_grade),
        )

    async def _verification(
        self,
        session: AsyncSession,
        recipient: Recipient,
        approved: Verification | None,
        today: date,
        actor: Actor | None,
    ) -> Verification | None:
        """A new verification of the household as approved, under today's policy (not
        stored yet)."""
        if approved is None:  # pragma: no cover - a foreign key
            return None
        try:
            verification, _ = await verification_service.prepare(
                session,
                principal=await self._scheduler(session, actor),
                body=self._verification_body(recipient, approved, today),
                catalog=self.catalog,
                sources=self.sources(),
                today=today,
                # The recipient's reference as approved (one stored before names were
                # refused in references still re-checks), and its authorization held to the
                # recipient's own dates (an expired one holds the re-check: needs_consent).
                submitted=False,
            )
        except HeduiError as error:
            log.warning("recheck_refused", recipient_id=recipient.id, problem=error.detail)
            return None
        return verification

    async def _actor(self, session: AsyncSession) -> Actor:
        """The scheduler itself, as the trail names it."""
        principal = await self._scheduler(session, None)
        return Actor(key_id=principal.key_id, name=principal.name, role="system", region="")

    async def _scheduler(self, session: AsyncSession, actor: Actor | None) -> Principal:
        """The principal re-check verifications are created by (made on first need, an
        audit event `apikey.create` by `actor`, else by the scheduler itself)."""
        if self._principal is None:
            keys = ApiKeyRepository.from_session(session)
            key = await keys.named(SCHEDULER_KEY_NAME)
            if key is None:
                now = utcnow()
                key = ApiKey(
                    name=SCHEDULER_KEY_NAME,
                    role=Role.caseworker.value,
                    region_prefix="",
                    # No token hashes to this: the key cannot be used to call the API.
                    token_hash=f"scheduler:{new_id()}"[:64],
                    created_at=now,
                    revoked_at=now,
                    # What an admin listing the keys reads beside it.
                    revoked_reason=SCHEDULER_KEY_REASON,
                )
                await keys.insert(key)
                await audit_service.record(
                    session,
                    actor or Actor(key_id=key.id, name=key.name, role="system", region=""),
                    APIKEY_CREATE,
                    object_type="api_key",
                    object_id=key.id,
                    detail=f"role {key.role}, region all, no token (internal: re-checks)",
                )
            self._principal = Principal(
                key_id=key.id, name=key.name, role=Role.caseworker, region_prefix=""
            )
        return self._principal


def _consent_expired(recipient: Recipient, today: date) -> bool:
    return authorization_expired(recipient.consent_expires_on, today)


def _item(
    recipient: Recipient, outcome: str, verification_id: str | None = None
) -> RecheckPlanItem:
    return RecheckPlanItem(
        recipient_id=recipient.id,
        region_code=recipient.region_code,
        due_on=recipient.next_recheck_on,
        outcome=outcome,
        verification_id=verification_id,
    )
