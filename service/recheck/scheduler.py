"""Starting the re-checks that are due, exactly once each, however many processes try.

Knows nothing of when it is called (the periodic loop, `hedui recheck`, a test): each call
looks at the recipients due on `today` and, for each, inserts the re-check keyed by
recipient and due date. The unique key decides who starts it: a second scheduler's insert
does nothing (on PostgreSQL it waits for the first one's transaction and then finds the
row). The re-check's verification is created through the same service intake uses, with
its job, in the same transaction, and the recipient's next due date moves past `today`, so
a run that catches up after a pause makes one re-check, not one per missed period.

Throttled: at most `max_in_flight` re-checks run at once (per-partner limits apply to each
call as for every verification).

Grouped: the re-checks of one region (county code) started for one day are one batch
(`kind: recheck`, keyed by region and day, so every pass and every process adds to the same
one), seen and followed like any batch (`GET /v1/batches/{id}`). A pass that has gone
through everything due closes that day's batches; each is completed, with
`batch.completed`, when its last re-check ends.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import cast

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas import batch as batch_wire
from schemas import verification as verification_wire
from schemas.recipient import RecheckPlanItem, RecheckRun, RecheckStatus
from service.auth.principal import Principal, Role
from service.batch.repository import BatchRepository
from service.db import WriteGate
from service.errors import HeduiError
from service.jobs.queue import RunQueue
from service.models import ApiKey, Recipient, Verification
from service.models.base import new_id, utcnow
from service.policy.catalog import PolicyCatalog
from service.recipient.calendar import next_after
from service.recipient.repository import RecipientRepository
from service.recipient.service import policy_for
from service.verification.service import verification as verification_service

log = structlog.get_logger(__name__)

SCHEDULER_KEY_NAME = "re-check scheduler"
"""The API key re-check verifications are created under (it has no usable token)."""


@dataclass
class Pass:
    """What one pass did; `started` are the verifications it created."""

    items: list[RecheckPlanItem] = field(default_factory=list)
    started: list[Verification] = field(default_factory=list)
    batches: set[str] = field(default_factory=set)
    """The re-check batches this pass added to."""

    def count(self, outcome: str) -> int:
        return sum(item.outcome == outcome for item in self.items)


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

    async def preview(
        self, today: date, *, region_prefix: str = "", limit: int = 1000
    ) -> RecheckRun:
        """What a pass would do now; nothing is written."""
        items: list[RecheckPlanItem] = []
        async with self.session_factory() as session:
            repository = RecipientRepository.from_session(session)
            for recipient in await repository.due(today, region_prefix=region_prefix, limit=limit):
                existing = await repository.recheck(recipient.id, recipient.next_recheck_on)
                if _consent_expired(recipient, today):
                    outcome = RecheckStatus.needs_consent.value
                elif existing is not None and existing.status != RecheckStatus.needs_consent:
                    outcome = "already_scheduled"
                else:
                    outcome = RecheckStatus.queued.value
                items.append(_item(recipient, outcome))
        return _run(today, items, dry_run=True)

    async def run_due(
        self, today: date, *, region_prefix: str = "", limit: int | None = None
    ) -> Pass:
        """Start the due re-checks this pass has room for (`max_in_flight` minus those
        running); their runs start when each chunk has committed."""
        done = Pass()
        async with self.session_factory() as session:
            running = await RecipientRepository.from_session(session).unfinished_rechecks()
        room = max(0, self.max_in_flight - running)
        if limit is not None:
            room = min(room, limit)
        after: str | None = None
        exhausted = False
        while room > 0:
            async with self.write_gate, self.session_factory() as session:
                repository = RecipientRepository.from_session(session)
                due = await repository.due(
                    today, region_prefix=region_prefix, limit=min(self.chunk, room), after=after
                )
                if not due:
                    exhausted = True
                    break
                after = due[-1].id
                started: list[Verification] = []
                for recipient in due:
                    item, verification = await self._start(session, recipient, today)
                    done.items.append(item)
                    if verification is not None:
                        started.append(verification)
                        if verification.batch_id is not None:
                            done.batches.add(verification.batch_id)
                await session.commit()
            for verification in started:
                self.queue.committed(verification)
            done.started.extend(started)
            room -= len(started)
        if exhausted:
            await self._close_batches(today, region_prefix)
        if done.started:
            log.info("rechecks_started", count=len(done.started), as_of=today.isoformat())
        return done

    async def _close_batches(self, today: date, region_prefix: str) -> None:
        """Everything due on `today` in `region_prefix` has been through a pass: that
        day's re-check batches there take no more, and complete when their runs end."""
        async with self.write_gate, self.session_factory() as session:
            scheduler = await self._scheduler(session)
            repository = BatchRepository.from_session(session)
            ids = await repository.open_of(
                scheduler.key_id, f"recheck:{region_prefix}", f":{today.isoformat()}"
            )
            await repository.close_open(ids, utcnow())
            await session.commit()

    async def _batch(self, session: AsyncSession, region_code: str, today: date) -> str:
        """The id of the re-check batch of `region_code` for `today` (made on first need)."""
        scheduler = await self._scheduler(session)
        return await BatchRepository.from_session(session).get_or_add(
            {
                "id": new_id(),
                "reference": f"re-checks {region_code} {today.isoformat()}",
                "kind": batch_wire.BatchKind.recheck.value,
                "region_prefix": region_code,
                "created_by": scheduler.key_id,
                "idempotency_key": f"recheck:{region_code}:{today.isoformat()}",
                "status": batch_wire.BatchStatus.open.value,
                "lines_received": 0,
                "households": 0,
                "invalid_lines": 0,
                "created_at": utcnow(),
            }
        )

    async def _start(
        self, session: AsyncSession, recipient: Recipient, today: date
    ) -> tuple[RecheckPlanItem, Verification | None]:
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
            }
        )
        if expired:
            return _item(recipient, RecheckStatus.needs_consent.value), None
        held = False
        if not inserted:
            existing = await repository.recheck(recipient.id, due_on)
            if existing is None or existing.status != RecheckStatus.needs_consent:
                return _item(recipient, "already_scheduled"), None
            recheck_id, held = existing.id, True
        verification = await self._verification(session, recipient, today)
        if verification is None:
            await repository.finish_recheck(recheck_id, RecheckStatus.failed.value, utcnow())
            return _item(recipient, RecheckStatus.failed.value), None
        if not await repository.start_recheck(
            recheck_id,
            verification_id=verification.id,
            now=utcnow(),
            held=held,
            batch_id=verification.batch_id,
        ):  # pragma: no cover - the insert (or the held row's update) decided already
            raise RuntimeError("re-check taken by another scheduler")
        await self.queue.enqueue(session, verification)
        parameters = policy_for(self.catalog, recipient, today)
        months = parameters.parameters.recheck_months(recipient.recheck_class) if parameters else 12
        await repository.advance(recipient.id, due_on, next_after(due_on, months, today), utcnow())
        return _item(recipient, RecheckStatus.queued.value, verification.id), verification

    async def _verification(
        self, session: AsyncSession, recipient: Recipient, today: date
    ) -> Verification | None:
        """A new verification of the household as approved, under today's policy, stored
        (not yet committed)."""
        approved = await RecipientRepository.from_session(session).verification(
            recipient.approved_verification_id
        )
        if approved is None:  # pragma: no cover - a foreign key
            return None
        body = verification_wire.VerificationCreate(
            reference=recipient.reference,
            program=cast(verification_wire.Program, recipient.program),
            region_code=recipient.region_code,
            township_code=recipient.township_code,
            area=cast(verification_wire.Area, recipient.area),
            as_of=today,
            consent=verification_wire.Consent(
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
        try:
            verification, _ = await verification_service.prepare(
                session,
                principal=await self._scheduler(session),
                body=body,
                catalog=self.catalog,
                sources=self.sources(),
                today=today,
            )
        except HeduiError as error:
            log.warning("recheck_refused", recipient_id=recipient.id, problem=error.detail)
            return None
        verification.batch_id = await self._batch(session, recipient.region_code, today)
        verification.batch_line = await BatchRepository.from_session(session).take_lines(
            verification.batch_id, 1
        )
        await verification_service.store(session, verification, body=body)
        return verification

    async def _scheduler(self, session: AsyncSession) -> Principal:
        """The principal re-check verifications are created by (made on first need)."""
        if self._principal is None:
            key = await session.scalar(
                select(ApiKey).where(ApiKey.name == SCHEDULER_KEY_NAME).order_by(ApiKey.id)
            )
            if key is None:
                key = ApiKey(
                    name=SCHEDULER_KEY_NAME,
                    role=Role.caseworker.value,
                    region_prefix="",
                    # No token hashes to this: the key cannot be used to call the API.
                    token_hash=f"scheduler:{new_id()}"[:64],
                    revoked_at=utcnow(),
                )
                session.add(key)
                await session.flush()
            self._principal = Principal(
                key_id=key.id, name=key.name, role=Role.caseworker, region_prefix=""
            )
        return self._principal


def _consent_expired(recipient: Recipient, today: date) -> bool:
    return recipient.consent_expires_on is not None and recipient.consent_expires_on < today


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


def _run(today: date, items: list[RecheckPlanItem], *, dry_run: bool) -> RecheckRun:
    def count(outcome: str) -> int:
        return sum(item.outcome == outcome for item in items)

    return RecheckRun(
        as_of=today,
        dry_run=dry_run,
        queued=count("queued"),
        needs_consent=count("needs_consent"),
        already_scheduled=count("already_scheduled"),
        items=items,
    )
