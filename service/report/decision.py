"""The approval step: a decision bound to the report it was made on."""

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import verification as wire
from schemas.assessment import NearRelativeMatch
from schemas.identity import mask_id_number
from service.auth.principal import Principal
from service.errors import (
    DecisionExists,
    Forbidden,
    InvalidRequest,
    NearRelativeRegisteredSince,
    ReportNotReady,
    VerificationWithdrawn,
)
from service.models import Decision, Report, Verification
from service.models.base import new_id
from service.near_relative.service import near_relative_matches
from service.policy.catalog import PolicyCatalog
from service.recipient.service import granted_benefit
from service.recipient.service import recipient as recipient_service
from service.report.repository import ReportRepository
from service.verification.repository import VerificationRepository
from service.verification.service import decision_to_wire, refuse_member_names
from service.webhook import outbox


def granted_one_off(
    verification: Verification, report: Report | None, body: wire.DecisionCreate
) -> Decimal | None:
    """The one-off amount a linshi approval grants: the report's when it computed one, else
    the approver's (`one_off_amount`), which is then required. None for anything else.
    InvalidRequest naming the field when the decision and the report disagree."""
    given = body.one_off_amount
    if verification.program != "linshi":
        if given is not None:
            raise InvalidRequest.at(
                ["body", "one_off_amount"],
                f"{verification.program} pays a monthly benefit, not a one-off amount "
                "(monthly_benefit)",
            )
        return None
    if body.decision != "approve":
        return None
    benefit: dict[str, Any] | None = (report.body or {}).get("benefit") if report else None
    computed = benefit.get("one_off_amount") if benefit else None
    if computed is not None:
        amount = Decimal(str(computed))
        if given is not None and given != amount:
            raise InvalidRequest.at(
                ["body", "one_off_amount"],
                "differs from the one-off amount the report computed: an approval grants "
                "the report's (leave this out)",
            )
        return amount
    if given is None:
        recommendation = (report.body or {}).get("recommendation") if report else None
        raise InvalidRequest.at(
            ["body", "one_off_amount"],
            f"the report computed no amount (its recommendation is {recommendation}): "
            "an approval of temporary aid states the one-off amount granted, in yuan",
        )
    return given


async def _no_near_relative_unseen(
    session: AsyncSession, verification: Verification, report: Report | None
) -> None:
    """Refuse an approval when the registry now holds a near relative among the members
    that the report, made earlier, does not show (a registration since): the approver must
    see it (近亲属备案, against 人情保). One statement; the usual household has none."""
    found = await near_relative_matches(session, [m.id_number for m in verification.members])
    if not found:
        return
    shown = {
        NearRelativeMatch.model_validate(match)
        for match in ((report.near_relatives or []) if report is not None else [])
    }
    unseen = [match for match in found if match not in shown]
    if unseen:
        members = sorted({match.id_number for match in unseen})
        raise NearRelativeRegisteredSince(mask_id_number(members[0]), len(members) - 1)


async def decide(
    session: AsyncSession,
    principal: Principal,
    verification: Verification,
    body: wire.DecisionCreate,
    *,
    catalog: PolicyCatalog,
    today: date,
) -> wire.Decision:
    if verification.created_by == principal.key_id:
        raise Forbidden("Whoever submitted a verification cannot decide it (separation of duties)")
    if verification.status == wire.VerificationStatus.withdrawn.value:
        raise VerificationWithdrawn(VerificationWithdrawn.NOT_DECIDED)
    if verification.status != wire.VerificationStatus.completed.value:
        raise ReportNotReady(verification.status)
    reports = ReportRepository.from_session(session)
    if await reports.decision_id(verification.id) is not None:
        raise DecisionExists()
    report = await reports.get(verification.id)
    # Refused before anything is written; a change's reason names no member of the
    # household it replaces either (the one who died or moved out is in that one only).
    names = [member.name for member in verification.members]
    if body.recipient_id is not None:
        names += await recipient_service.household_names(session, principal, str(body.recipient_id))
    refuse_member_names(body.reason, names, ["body", "reason"])
    granted = granted_benefit(verification, report, body)
    one_off = granted_one_off(verification, report, body)
    if body.decision == "approve":
        await _no_near_relative_unseen(session, verification, report)
    decision = Decision(
        id=new_id(),  # names the row its sealed amount is bound to, before the insert
        verification_id=verification.id,
        decision=body.decision,
        reason=body.reason,
        decided_by=principal.key_id,
        decided_by_name=principal.name,
        report_hash=report.report_hash if report else None,
        policy_version=report.policy_version if report else None,
        recipient_id=str(body.recipient_id) if body.recipient_id else None,
    )
    if granted is not None:
        decision.monthly_benefit = granted
    if one_off is not None:
        decision.one_off_amount = one_off
    session.add(decision)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent decision got there first
        raise DecisionExists() from exc
    if not await VerificationRepository.from_session(session).still_completed(verification.id):
        # Withdrawn by a request that committed after this one read it.
        raise VerificationWithdrawn(VerificationWithdrawn.NOT_DECIDED)
    recipient = await recipient_service.record_decision(
        session,
        principal=principal,
        verification=verification,
        decision=decision,
        body=body,
        report=report,
        catalog=catalog,
        today=today,
    )
    await outbox.record(
        session,
        "decision.recorded",
        verification.region_code,
        {
            "decision_id": decision.id,
            "verification_id": verification.id,
            "reference": verification.reference,
            "region_code": verification.region_code,
            "decision": decision.decision,
            "recipient_id": recipient.id if recipient else None,
            # The approval of a household on the roll whose members changed, in its place.
            "household_change": body.recipient_id is not None,
        },
        township_code=verification.township_code,
    )
    return decision_to_wire(decision)
