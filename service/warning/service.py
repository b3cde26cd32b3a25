"""Raising warnings when a re-check ends, and the caseworkers' side of them."""

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import warning as wire
from schemas.assessment import AssessmentInput
from schemas.recipient import RecipientStatus
from schemas.report import Report as ReportDocument
from service.auth.principal import Principal
from service.auth.scope import narrow
from service.errors import Conflict, NotFound
from service.models import ChangeWarning, Recheck, Recipient, Webhook
from service.models.base import utcnow
from service.pagination import decode_cursor, listing, next_cursor
from service.recipient.repository import RecipientRepository
from service.report.service import assessment_input
from service.verification.repository import VerificationRepository
from service.verification.service import refuse_member_names
from service.warning.changes import (
    Side,
    changes_eligibility,
    detect,
    detect_without_records,
    granted_apart,
    not_asked,
    proposed_action,
    report_changed,
    unanswered,
)
from service.warning.repository import WarningRepository
from service.webhook import outbox


class WarningNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such warning")


def _seen(code: str, source: str, member: str | None, after: list[dict[str, Any]]) -> str:
    """A change's identity for telling whether it was raised before: what changed, where,
    for whom, and what the re-check found."""
    return json.dumps([code, source, member, after], sort_keys=True, ensure_ascii=False)


def _benefit(report: ReportDocument) -> Decimal | None:
    return report.benefit.monthly_amount if report.benefit else None


class WarningService:
    async def raise_for_recheck(
        self,
        session: AsyncSession,
        *,
        recheck: Recheck,
        recipient: Recipient,
        verification_id: str,
        report: ReportDocument,
        inputs: AssessmentInput,
        now: datetime,
        webhooks: Sequence[Webhook] | None = None,
    ) -> list[ChangeWarning]:
        """Compare the re-check with the recipient's approved report; store a warning per
        change (the caller's transaction). A change that needs the approval step puts the
        recipient under review, with the re-check's verification to decide on; a re-check
        that needs none ends a review (one returned, started again, found nothing to
        decide), unless a later re-check has started. `webhooks`: the active ones, when the
        caller has read them in this transaction already."""
        previous_id = recipient.approved_verification_id
        # The approved verification and its report in one statement (its members and
        # sources in one each).
        found = await VerificationRepository.from_session(session).get_reported(previous_id)
        if found is None:  # pragma: no cover - approved means reported
            return []
        previous, stored = found
        before_report = ReportDocument.model_validate(stored.body)
        before = Side.of(assessment_input(previous), before_report)
        after = Side.of(inputs, report)
        # What changed, and what could not be seen: a partner that failed today is no
        # evidence that nothing changed, so the household is reviewed, not kept.
        paid = recipient.monthly_benefit
        purged_at = previous.records_purged_at
        compared = (
            detect(before, after)
            if purged_at is None
            else detect_without_records(before, after, purged_at.date())
        )
        changes = (
            compared
            + not_asked(before, after)
            + unanswered(after)
            + granted_apart(paid, before_report, report)
        )
        if not changes:
            # Nothing the records or figures show, yet the report may still call for the
            # approver (a near relative registered since, a standard raised): then the
            # report is the change, never a silent `keep`.
            changed = report_changed(before_report, report, paid)
            if changed is None:
                await self._no_approval_needed(session, recheck, recipient, now)
                return []
            changes = [changed]
        action = proposed_action(before_report, report, paid)
        eligibility = changes_eligibility(before_report, report)
        needs_approval = action != "keep"
        if not needs_approval:
            # The approved report stays the baseline while nothing needs approval: a change
            # an earlier re-check raised against it, with the same evidence today (the same
            # motorcycle, the same pension), is the caseworker's already, not news at every
            # re-check. One whose evidence moved (the pension rose again) is raised.
            earlier = await WarningRepository.from_session(session).raised_against(
                recipient.id, previous_id
            )
            seen = {_seen(w.code, w.source, w.member, w.after) for w in earlier}
            changes = [
                change
                for change in changes
                if _seen(
                    change.code,
                    change.source,
                    change.member,
                    [evidence.as_json() for evidence in change.after],
                )
                not in seen
            ]
            if not changes:
                await self._no_approval_needed(session, recheck, recipient, now)
                return []
        warnings = [
            ChangeWarning(
                recipient_id=recipient.id,
                recheck_id=recheck.id,
                verification_id=verification_id,
                previous_verification_id=previous_id,
                region_code=recipient.region_code,
                township_code=recipient.township_code,
                code=change.code,
                severity=change.severity,
                source=change.source,
                member=change.member,
                before=[e.as_json() for e in change.before],
                after=[e.as_json() for e in change.after],
                proposed_action=action,
                benefit_before=paid if paid is not None else _benefit(before_report),
                benefit_after=_benefit(report),
                changes_eligibility=eligibility,
                review_verification_id=verification_id if needs_approval else None,
                status=wire.WarningStatus.open.value,
                created_at=now,
            )
            for change in changes
        ]
        await WarningRepository.from_session(session).add_all(warnings)
        for raised in warnings:
            await outbox.record(
                session,
                "warning.raised",
                raised.region_code,
                {
                    "warning_id": raised.id,
                    "recipient_id": raised.recipient_id,
                    "verification_id": raised.verification_id,
                    "region_code": raised.region_code,
                    "code": raised.code,
                    "severity": raised.severity,
                    "member": raised.member,
                    "proposed_action": raised.proposed_action,
                    "changes_eligibility": raised.changes_eligibility,
                },
                township_code=raised.township_code,
                now=now,
                webhooks=webhooks,
            )
        if needs_approval:
            await RecipientRepository.from_session(session).update(
                recipient.id, status=RecipientStatus.under_review.value, updated_at=now
            )
        else:
            await self._no_approval_needed(session, recheck, recipient, now)
        return warnings

    @staticmethod
    async def _no_approval_needed(
        session: AsyncSession, recheck: Recheck, recipient: Recipient, now: datetime
    ) -> None:
        """The re-check needs no approval: a review of its recipient ends (not one a later
        re-check opened). Nothing to write for one not under review, the usual case."""
        if recipient.status == RecipientStatus.under_review.value:
            await RecipientRepository.from_session(session).end_review(recheck, now)

    async def page(
        self, session: AsyncSession, principal: Principal, where: wire.WarningFilter
    ) -> wire.WarningPage:
        listed = listing("warnings", where)
        rows = await WarningRepository.from_session(session).page(
            scope=narrow(principal.narrowed(where.region_code), where.township_code),
            where=where,
            limit=where.limit + 1,
            after=decode_cursor(where.cursor, listed) if where.cursor else None,
        )
        return wire.WarningPage(
            items=[to_wire(row) for row in rows[: where.limit]],
            next_cursor=next_cursor(
                rows, where.limit, lambda row: (row.created_at, row.id), listed
            ),
        )

    async def read(
        self, session: AsyncSession, principal: Principal, warning_id: str
    ) -> wire.Warning:
        return to_wire(await self._get(session, principal, warning_id))

    async def acknowledge(
        self, session: AsyncSession, principal: Principal, warning_id: str, note: str
    ) -> wire.Warning:
        return await self._move(
            session,
            principal,
            warning_id,
            from_statuses=(wire.WarningStatus.open.value,),
            values={
                "status": wire.WarningStatus.acknowledged.value,
                "note": note,
                "acknowledged_note": note,
                "acknowledged_by": principal.key_id,
                "acknowledged_by_name": principal.name,
                "acknowledged_at": utcnow(),
            },
        )

    async def resolve(
        self, session: AsyncSession, principal: Principal, warning_id: str, note: str
    ) -> wire.Warning:
        return await self._move(
            session,
            principal,
            warning_id,
            from_statuses=(wire.WarningStatus.open.value, wire.WarningStatus.acknowledged.value),
            values={
                "status": wire.WarningStatus.resolved.value,
                "note": note,
                "resolved_note": note,
                "resolved_by": principal.key_id,
                "resolved_by_name": principal.name,
                "resolved_at": utcnow(),
            },
        )

    async def summary(
        self, session: AsyncSession, principal: Principal, region_code: str | None = None
    ) -> wire.WarningSummary:
        rows = await WarningRepository.from_session(session).summary(
            scope=principal.narrowed(region_code)
        )
        return wire.WarningSummary(
            regions=[
                wire.RegionCount(
                    region_code=region, open=opened, acknowledged=seen, resolved=done, high=high
                )
                for region, opened, seen, done, high in rows
            ]
        )

    async def _get(
        self, session: AsyncSession, principal: Principal, warning_id: str
    ) -> ChangeWarning:
        warning = await WarningRepository.from_session(session).get(warning_id, scope=principal)
        if warning is None:
            raise WarningNotFound()
        return warning

    async def _move(
        self,
        session: AsyncSession,
        principal: Principal,
        warning_id: str,
        *,
        from_statuses: tuple[str, ...],
        values: dict[str, object],
    ) -> wire.Warning:
        warning = await self._get(session, principal, warning_id)
        # Refuse before writing anything: a refused request holds no write lock while its
        # refusal is recorded (SQLite has one writer at a time).
        if warning.status not in from_statuses:
            raise Conflict(f"The warning is {warning.status}")
        await _no_member_named(session, warning, str(values["note"]))
        moved = await WarningRepository.from_session(session).transition(
            warning.id, from_statuses=from_statuses, values=values
        )
        if not moved:
            raise Conflict(f"The warning is {warning.status}")
        await session.refresh(warning)
        return to_wire(warning)


async def _no_member_named(session: AsyncSession, warning: ChangeWarning, note: str) -> None:
    """422 when the note names a member of the household the warning is about (as the
    re-check and the verification before it knew it)."""
    verifications = VerificationRepository.from_session(session)
    names: list[str] = []
    for verification_id in (warning.verification_id, warning.previous_verification_id):
        if verification_id is not None:
            names += [
                n for n in await verifications.member_names(verification_id) if n not in names
            ]
    refuse_member_names(note, names, ["body", "note"])


def to_wire(warning: ChangeWarning) -> wire.Warning:
    return wire.Warning(
        id=warning.id,
        code=warning.code,
        severity=warning.severity,
        status=wire.WarningStatus(warning.status),
        recipient_id=warning.recipient_id,
        region_code=warning.region_code,
        township_code=warning.township_code,
        source=warning.source,
        member=warning.member,
        before=[wire.WarningEvidence.model_validate(e) for e in warning.before],
        after=[wire.WarningEvidence.model_validate(e) for e in warning.after],
        proposed_action=warning.proposed_action,
        benefit_before=warning.benefit_before,
        benefit_after=warning.benefit_after,
        changes_eligibility=warning.changes_eligibility,
        verification_id=warning.verification_id,
        previous_verification_id=warning.previous_verification_id,
        review_verification_id=warning.review_verification_id,
        note=warning.note,
        acknowledged_note=warning.acknowledged_note,
        resolved_note=warning.resolved_note,
        acknowledged_at=warning.acknowledged_at,
        acknowledged_by=warning.acknowledged_by_name or warning.acknowledged_by,
        acknowledged_by_key_id=warning.acknowledged_by,
        resolved_at=warning.resolved_at,
        resolved_by=warning.resolved_by_name or warning.resolved_by,
        resolved_by_key_id=warning.resolved_by,
        created_at=warning.created_at,
    )


warning = WarningService()
