"""Accepting a verification: store it with its job, then let it run.

This is the one place that commits inside a request rather than leaving it to the request
dependency: the verification, its idempotency key and its job commit together before any
partner is asked, so a duplicate request (same `Idempotency-Key`) loses the race at the
database and never reaches a partner, and a 202 never names a verification without a job.
"""

from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import verification as wire
from service.auth.principal import Principal
from service.bulk import Rows, insert_together
from service.db import WriteGate, commit_begun
from service.jobs.queue import RunQueue
from service.models import Verification
from service.policy.catalog import PolicyCatalog
from service.verification.service import Idempotency
from service.verification.service import verification as verification_service


async def submit(
    session: AsyncSession,
    *,
    principal: Principal,
    body: wire.VerificationCreate,
    catalog: PolicyCatalog,
    sources: list[tuple[str, str]],
    queue: RunQueue,
    write_gate: WriteGate,
    today: date,
    idempotency_key: str | None,
    with_change: Callable[[Verification], Sequence[Rows]] | None = None,
) -> tuple[Verification, bool]:
    """The verification and whether this request created it (False: an idempotent replay).

    `with_change`: what else the transaction that stores a new verification inserts (the
    request's audit record), so that both commit together or neither does. With the run
    claimed at the insert, the rows are the whole transaction: on PostgreSQL one statement
    and one round trip (`service.bulk`)."""
    idempotency = Idempotency.of(session, idempotency_key, body)
    verification, created = await verification_service.prepare(
        session,
        principal=principal,
        body=body,
        catalog=catalog,
        sources=sources,
        today=today,
        idempotency=idempotency,
    )
    if not created:
        return verification, False
    # Give the pooled connection back before queueing at the write gate: holding one while
    # waiting for runs that need one to finish would deadlock a busy pool.
    await commit_begun(session)
    try:
        async with write_gate:
            # Run here: inserted claimed, no statement more; otherwise queued after it.
            claim = queue.claim_at_insert()
            rows = verification_service.rows_to_store(
                session, verification, idempotency=idempotency, claim=claim
            )
            if with_change is not None:
                rows += with_change(verification)
            if claim:
                await insert_together(session, rows, commit=True)
            else:
                await insert_together(session, rows)
                await queue.enqueue(session, verification)
                await session.commit()
    except IntegrityError:
        await session.rollback()
        # A concurrent request with the same Idempotency-Key won the race: its verification
        # is the answer, and its run the only one.
        replayed = (
            await verification_service.replay(session, principal, idempotency)
            if idempotency is not None
            else None
        )
        if replayed is None:
            raise
        return replayed, False
    queue.committed(verification)
    return verification, True
