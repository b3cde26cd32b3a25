"""Re-score stored verifications under changed policy figures and sum up the impact."""

from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from schemas import report as wire
from service.auth.principal import Principal
from service.errors import InvalidRequest
from service.models import Report, Verification
from service.policy.overrides import PolicyOverrideError, check_overrides
from service.report.rescore import monthly_benefit, rebuild, simulated
from service.report.service import StoredReport
from service.verification.repository import in_scope


async def simulate(
    session: AsyncSession, principal: Principal, request: wire.SimulationRequest
) -> wire.SimulationResult:
    try:
        # Refused as such even where no verification would be re-scored with them.
        check_overrides(request.overrides)
    except PolicyOverrideError as error:
        raise InvalidRequest.at(["body", *error.loc], error.problem) from error
    prefix = principal.narrowed(request.region_code)
    statement = in_scope(
        select(Verification, Report)
        .join(Report, Report.verification_id == Verification.id)
        .options(selectinload(Verification.members), selectinload(Verification.sources))
        .where(Verification.status == "completed")
        .order_by(Verification.completed_at, Verification.id)
        .limit(request.limit + 1),
        prefix,
    )
    statement = statement.where(
        Verification.program == request.program,
        Verification.area == request.area,
        # Purged records cannot be re-scored (retention): such reports are left out.
        Verification.records_purged_at.is_(None),
    )
    if request.completed_from:
        start = datetime.combine(request.completed_from, time.min, tzinfo=UTC)
        statement = statement.where(Verification.completed_at >= start)
    if request.completed_to:
        end = datetime.combine(request.completed_to, time.max, tzinfo=UTC)
        statement = statement.where(Verification.completed_at <= end)
    found = (await session.execute(statement)).all()
    rows = [
        _impact(verification, report, request.overrides)
        for verification, report in found[: request.limit]
    ]

    before = sum((row.benefit_before or Decimal(0) for row in rows), Decimal(0))
    after = sum((row.benefit_after or Decimal(0) for row in rows), Decimal(0))
    return wire.SimulationResult(
        verifications=len(rows),
        changed=sum(row.before != row.after for row in rows),
        newly_eligible=sum(row.before != "eligible" and row.after == "eligible" for row in rows),
        no_longer_eligible=sum(
            row.before == "eligible" and row.after != "eligible" for row in rows
        ),
        monthly_benefit_before=before,
        monthly_benefit_after=after,
        monthly_benefit_delta=after - before,
        truncated=len(found) > request.limit,
        rows=rows,
    )


def _impact(
    verification: Verification, row: Report, overrides: Mapping[str, object]
) -> wire.ImpactRow:
    stored = StoredReport.of(row)
    changed = rebuild(verification, stored, simulated(verification, stored.report, overrides))
    return wire.ImpactRow(
        verification_id=verification.id,
        reference=verification.reference,
        before=stored.report.recommendation,
        after=changed.recommendation,
        benefit_before=monthly_benefit(stored.report),
        benefit_after=monthly_benefit(changed),
    )
