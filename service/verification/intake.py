"""Accepting a verification: store it and start its run, partners first.

This is the one place that commits inside a request rather than leaving it to the request
dependency: the background run must see the stored verification, and a `Prefer: wait`
caller waits for that run before the request ends.
"""

import asyncio
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import verification as wire
from service.auth.principal import Principal
from service.db import WriteGate
from service.jobs.runner import Job, VerificationRunner
from service.models import Verification
from service.policy.catalog import PolicyCatalog
from service.verification.service import request_hash
from service.verification.service import verification as verification_service


async def submit(
    session: AsyncSession,
    *,
    principal: Principal,
    body: wire.VerificationCreate,
    catalog: PolicyCatalog,
    sources: list[tuple[str, str]],
    runner: VerificationRunner,
    write_gate: WriteGate,
    today: date,
    idempotency_key: str | None,
    awaited: bool,
) -> tuple[Verification, bool]:
    """The verification and whether this request created it (False: an idempotent replay)."""
    verification, created = await verification_service.prepare(
        session,
        principal=principal,
        body=body,
        catalog=catalog,
        sources=sources,
        today=today,
        idempotency_key=idempotency_key,
    )
    if not created:
        return verification, False
    # Partners are asked while the request is being stored: their answers are written only
    # once `stored` is set, and a request that fails to store cancels the run.
    stored = asyncio.Event()
    runner.start(verification.id, Job.of(verification, stored), awaited=awaited)
    # Give the pooled connection back before queueing at the write gate: holding one while
    # waiting for runs that need one to finish would deadlock a busy pool.
    await session.commit()
    try:
        async with write_gate:
            await verification_service.store(
                session, verification, body=body, idempotency_key=idempotency_key
            )
            await session.commit()
    except IntegrityError:
        runner.abandon(verification.id)
        await session.rollback()
        # A concurrent request with the same Idempotency-Key won the race: its verification
        # is the answer.
        replayed = (
            await verification_service.replay(
                session, principal, idempotency_key, request_hash(body)
            )
            if idempotency_key is not None
            else None
        )
        if replayed is None:
            raise
        return replayed, False
    except BaseException:
        runner.abandon(verification.id)
        raise
    stored.set()
    return verification, True
