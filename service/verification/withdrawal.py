"""Withdrawing a verification: the household withdrew its consent (PIPL Art. 15), or the
caseworker withdrew the application.

One transaction, whatever the verification's state:
- it becomes `withdrawn` (with who, when, why and the status it had), and its unanswered
  sources `withdrawn`: every later write of a run or a collect is conditional on those
  states (a source settles only while `pending` or `awaiting`; a run claims, parks and
  finishes only a `queued` or `running` verification), so no partner answer arriving
  after this is stored, no report is built, and a queued job finds nothing to do;
- its raw partner records (and so the facts derived from them) are purged, as the
  retention purge does; a report made before (a `completed` verification) and its
  decision stay, for accountability;
- a re-check it was running for, or had finished without a decision yet, is held for a new
  authorization (`needs_consent`: the withdrawal may be the household's consent's, so the
  recipient's authorization ends), its recipient due again on the date it was due; a
  finished one that made, confirmed or re-checked a recipient ends that recipient's
  authorization too, so that no re-check
  asks a partner under a consent the household may have taken back;
  `verification.withdrawn` is recorded for webhooks (ids and codes only: the reason is
  never sent).

What still runs in this process is stopped by the caller after the commit (the run queue's
`stop`); a run in another process stops at the first answer it settles after this (none
is stored: `Workflow` then reads that the run is no longer its), at the latest at its next
heartbeat, whose lease renewal a withdrawn verification refuses.
"""

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import verification as wire
from service.auth.principal import Principal
from service.errors import VerificationWithdrawn
from service.models.base import utcnow
from service.recipient.repository import RecipientRepository
from service.retention.repository import RetentionRepository
from service.verification.repository import VerificationRepository
from service.verification.service import refuse_member_names
from service.verification.service import verification as verification_service
from service.webhook import outbox


async def withdraw(
    session: AsyncSession,
    principal: Principal,
    verification_id: str,
    body: wire.WithdrawalCreate,
    today: date,
) -> wire.Verification:
    """Withdraw a verification inside the caller's scope (404 outside it); 409 when it
    was withdrawn already. The caller commits."""
    verification = await verification_service.get(session, principal, verification_id)
    if verification.status == wire.VerificationStatus.withdrawn.value:
        raise VerificationWithdrawn(VerificationWithdrawn.ALREADY)
    refuse_member_names(
        body.reason, [member.name for member in verification.members], ["body", "reason"]
    )
    now = utcnow()
    withdrawn = await VerificationRepository.from_session(session).withdraw(
        verification.id,
        now=now,
        by=principal.key_id,
        by_name=principal.name,
        reason=body.reason,
    )
    if withdrawn is None:  # a concurrent withdrawal committed first
        raise VerificationWithdrawn(VerificationWithdrawn.ALREADY)
    was, now = withdrawn
    await RetentionRepository.from_session(session).purge([verification.id], now)
    recipients = RecipientRepository.from_session(session)
    found = await recipients.recheck_of(verification.id)
    if found is not None:
        recheck, _recipient = found
        # A finished re-check nobody has decided yet (its report awaited an approver, its
        # recipient under review) is held as a running one is: decided it cannot be any
        # more, so the household would wait under review with nothing to decide.
        decided = bool(
            (await VerificationRepository.from_session(session).decisions([verification.id])).get(
                verification.id
            )
        )
        await recipients.withdraw_recheck(recheck, now, today, undecided=not decided)
    if was == wire.VerificationStatus.completed.value:
        await recipients.end_consent_of(verification.id, now, today)
    await outbox.record(
        session,
        "verification.withdrawn",
        verification.region_code,
        {
            "verification_id": verification.id,
            "reference": verification.reference,
            "region_code": verification.region_code,
            "status_before": was,
            "withdrawn_at": now.isoformat(),
        },
        township_code=verification.township_code,
        now=now,
    )
    return await verification_service.read(session, principal, verification.id)
