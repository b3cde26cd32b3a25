"""What a verification's end writes besides the report, in the same transaction: the
`verification.completed` event, and for a re-check the change detection against the
recipient's approved report."""

from sqlalchemy.ext.asyncio import AsyncSession

from schemas.assessment import AssessmentInput
from schemas.recipient import RecheckStatus, RecipientStatus
from schemas.report import Report
from schemas.verification import VerificationStatus
from service.models import Verification
from service.models.base import utcnow
from service.recipient.repository import RecipientRepository
from service.warning.service import warning as warning_service
from service.webhook import outbox


class RunEnded:
    """`Workflow`'s effects: called once per verification, when it ends."""

    async def ended(
        self,
        session: AsyncSession,
        verification_id: str,
        status: str,
        *,
        report: Report | None = None,
        inputs: AssessmentInput | None = None,
    ) -> None:
        now = utcnow()
        # Read once for every event of this transaction; none (the usual case) spares
        # reading the verification back for an event nobody receives.
        webhooks = await outbox.subscribers(session)
        verification = await session.get(Verification, verification_id) if webhooks else None
        if verification is not None:
            await outbox.record(
                session,
                "verification.completed",
                verification.region_code,
                {
                    "verification_id": verification_id,
                    "reference": verification.reference,
                    "region_code": verification.region_code,
                    "status": status,
                    "recommendation": report.recommendation if report else None,
                },
                township_code=verification.township_code,
                now=now,
                webhooks=webhooks,
            )
        repository = RecipientRepository.from_session(session)
        found = await repository.recheck_of(verification_id)
        if found is None:
            return
        recheck, recipient = found
        completed = status == VerificationStatus.completed.value
        await repository.finish_recheck(
            recheck.id,
            (RecheckStatus.completed if completed else RecheckStatus.failed).value,
            now,
        )
        if report is None or inputs is None:
            return
        if recipient.status == RecipientStatus.left.value:
            return
        await warning_service.raise_for_recheck(
            session,
            recheck=recheck,
            recipient=recipient,
            verification_id=verification_id,
            report=report,
            inputs=inputs,
            now=now,
            webhooks=webhooks,
        )
