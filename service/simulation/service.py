"""Re-score stored verifications under changed policy figures and sum up the impact: one
verification per household (`service.simulation.repository`)."""

from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation, Overflow

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import report as wire
from service.auth.principal import Principal
from service.errors import InvalidRequest
from service.models import Report, Verification
from service.policy.overrides import PolicyOverrideError, check_override_values
from service.recipient.service import ROLL_PROGRAMS
from service.report.rescore import monthly_benefit, rebuild, simulated
from service.report.service import StoredReport
from service.simulation.repository import SimulationRepository


async def simulate(
    session: AsyncSession, principal: Principal, request: wire.SimulationRequest
) -> wire.SimulationResult:
    try:
        # Refused as such even where no verification would be re-scored with them.
        check_override_values(request.program, request.area, request.overrides)
    except PolicyOverrideError as error:
        raise InvalidRequest.at(["body", *error.loc], error.problem) from error
    start = end = None
    if request.completed_from:
        start = datetime.combine(request.completed_from, time.min, tzinfo=UTC)
    if request.completed_to:
        end = datetime.combine(request.completed_to, time.max, tzinfo=UTC)
    found = await SimulationRepository.from_session(session).households(
        scope=principal.narrowed(request.region_code),
        program=request.program,
        area=request.area,
        completed_from=start,
        completed_to=end,
        limit=request.limit + 1,
        # A linshi one-off is paid per application: a household's every one counts.
        same_people_once=request.program in ROLL_PROGRAMS,
    )
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
    policy = simulated(verification, stored.report, overrides)
    try:
        changed = rebuild(verification, stored, policy)
    except (InvalidOperation, Overflow, ValidationError) as error:
        if isinstance(error, ValidationError) and not _beyond_an_amount(error):
            raise
        # Figures in bounds may still carry a stored household's own figures out of range
        # (a huge deposit ÷ a lower housing-fund rate): the figures cannot score it.
        where: list[str | int] = ["body", "overrides"]
        if len(overrides) == 1:
            where.extend(overrides)  # the one figure that did it
        raise InvalidRequest.at(
            where,
            f"verification {verification.id}: under these figures an amount it works out "
            "has more than the 16 digits an amount may have",
        ) from error
    return wire.ImpactRow(
        verification_id=verification.id,
        reference=verification.reference,
        before=stored.report.recommendation,
        after=changed.recommendation,
        benefit_before=monthly_benefit(stored.report),
        benefit_after=monthly_benefit(changed),
    )


_OUT_OF_RANGE = frozenset({"decimal_max_digits", "decimal_whole_digits"})


def _beyond_an_amount(error: ValidationError) -> bool:
    """Whether every error is an amount with more digits than an amount may have."""
    return all(detail["type"] in _OUT_OF_RANGE for detail in error.errors())
