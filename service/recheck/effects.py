"""What a verification's end writes besides the report, in the same transaction: the
`verification.completed` event, and for a re-check the change detection against the
recipient's approved report."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.assessment import AssessmentInput
from schemas.recipient import RecheckStatus, RecipientStatus
from schemas.report import Report
from schemas.verification import VerificationStatus
from service.models.base import utcnow
from service.recipient.repository import RecipientRepository
from service.verification.repository import VerificationRepository
from service.warning.service import warning as warning_service
from service.webhook import outbox
from service.webhook.repository import WebhookRepository


class RunEnded:
    """`Workflow`'s effects: called once per verification, when it ends."""

    def lookups(self, verification_id: str | ColumnElement[str]) -> tuple[ColumnElement[Any], ...]:
        """Whether any webhook is active, whether the verification runs a re-check: read by
        the statement that ends it, so that ending one that is no re-check, with no webhook
        (the usual case), costs no read of either."""
        return (
            WebhookRepository.any_active(),
            RecipientRepository.runs_a_recheck(verification_id),
        )

    async def ended(
        self,
        session: AsyncSession,
        verification_id: str,
        status: str,
        *,
        report: Report | None = None,
        inputs: AssessmentInput | None = None,
        looked_up: Sequence[Any] | None = None,
    ) -> None:
        now = utcnow()
        any_webhook, rechecked = looked_up if looked_up is not None else (True, True)
        # Read once for every event of this transaction; none (the usual case) spares
        # reading the verification back for an event nobody receives.
        webhooks = await outbox.subscribers(session) if any_webhook else []
        verification = (
            await VerificationRepository.from_session(session).row(verification_id)
            if webhooks
            else None
        )
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
        found = await repository.recheck_of(verification_id) if rechecked else None
        if found is None:
            return
        recheck, recipient = found
        if status != VerificationStatus.completed.value:
            await repository.fail_recheck(recheck, now)
            return
        await repository.finish_recheck(recheck.id, RecheckStatus.completed.value, now)
        if report is None or inputs is None:
            return
        if recipient.status == RecipientStatus.left.value:
            return
        if await repository.household_changed_since(
            recipient.id, recheck.started_at or recheck.created_at
        ):
            # The household on the roll changed while this ran (a birth, a death...): it
            # compared the members approved before, and the change's report, decided since,
            # is what the roll pays on. Nothing to warn of, no review to open.
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
