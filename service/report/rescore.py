"""Re-scoring stored verifications: reproduction and what-if simulation.

Both read only what was stored (members, source rows, the report's policy figures); no
partner is asked again.
"""

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import report as wire
from schemas.policy import ResolvedPolicy
from schemas.verification import VerificationStatus
from service.errors import Conflict, InvalidRequest, VerificationWithdrawn
from service.models import Verification
from service.policy.arrangement import ArrangementError, arrangement
from service.policy.catalog import PolicyCatalog
from service.policy.overrides import PolicyOverrideError, apply_overrides
from service.report.service import (
    StoredReport,
    assessment_input,
    build_report,
    requested_arrangement,
    stored_report_with_inputs,
)

_VOLATILE = {"generated_at", "report_hash"}


class RecordsPurged(Conflict):
    slug = "records-purged"

    def __init__(self, on: str) -> None:
        super().__init__(
            f"The partner records behind this report were purged on {on} under the retention "
            "policy; the stored report and its decisions stand, but it cannot be re-scored"
        )


def stored_policy(report: wire.Report) -> ResolvedPolicy:
    """The exact figures a stored report was scored with."""
    if report.policy.parameters is None or report.policy.content_hash is None:
        raise InvalidRequest("This report predates stored policy figures and cannot be reproduced")
    return ResolvedPolicy(
        parameters=report.policy.parameters, content_hash=report.policy.content_hash
    )


def rebuild(
    verification: Verification,
    stored: StoredReport,
    policy: ResolvedPolicy,
    *,
    language: str = "zh",
) -> wire.Report:
    """The report for `verification` under `policy`, from the facts stored with `stored`."""
    if verification.status == VerificationStatus.withdrawn.value:
        raise VerificationWithdrawn(VerificationWithdrawn.NOT_RESCORED)
    if verification.records_purged_at is not None:
        raise RecordsPurged(verification.records_purged_at.date().isoformat())
    return build_report(
        verification.id,
        verification.region_code,
        assessment_input(verification, stored.near_relatives),
        policy,
        language=language,
        generated_at=stored.report.generated_at,
    ).report


async def rendered(
    session: AsyncSession, verification: Verification, language: str
) -> tuple[wire.Report, str]:
    """The stored report and the language it comes in: as stored (Chinese), or rendered
    anew in `language` from the same stored facts and policy figures, its `report_hash`
    still the stored report's (what a decision is bound to). A report whose facts are gone
    (the verification withdrawn, or its records purged) comes as stored, in Chinese."""
    stored = await stored_report_with_inputs(session, verification)
    if (
        verification.status == VerificationStatus.withdrawn.value
        or verification.records_purged_at is not None
    ):
        language = "zh"
    if language == "zh":
        return stored.report, language
    translated = rebuild(verification, stored, stored_policy(stored.report), language=language)
    return translated.model_copy(update={"report_hash": stored.report.report_hash}), language


async def rescore(
    session: AsyncSession,
    verification: Verification,
    catalog: PolicyCatalog,
    *,
    as_of: date | None = None,
    language: str = "zh",
) -> wire.Rescore:
    stored = await stored_report_with_inputs(session, verification)
    if as_of is None:
        policy = stored_policy(stored.report)
    else:
        inputs = assessment_input(verification)  # typed program and area
        resolved = catalog.resolve(verification.region_code, inputs.program, inputs.area, as_of)
        if resolved is None:
            raise InvalidRequest.at(["body", "as_of"], f"no policy in force on {as_of}")
        try:
            arrangement(resolved.parameters, inputs.support_mode, inputs.care_grade)
        except ArrangementError as error:
            raise InvalidRequest.at(
                ["body", "as_of"], f"the policy in force on {as_of}: {error}"
            ) from error
        policy = resolved
    # Stored reports are in Chinese: compare like with like, then answer in the language asked.
    canonical = rebuild(verification, stored, policy)
    changes = differences(stored.report, canonical)
    report = (
        canonical if language == "zh" else rebuild(verification, stored, policy, language=language)
    )
    return wire.Rescore(
        report=report,
        original_report_hash=stored.report.report_hash or "",
        identical=not changes,
        changes=changes,
    )


def differences(before: wire.Report, after: wire.Report) -> list[str]:
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return sorted(
        key
        for key in old.keys() | new.keys()
        if key not in _VOLATILE and old.get(key) != new.get(key)
    )


def simulated(
    verification: Verification, stored: wire.Report, overrides: Mapping[str, object]
) -> ResolvedPolicy:
    """The stored report's figures with `overrides`; 422 when they cannot score this case."""
    try:
        policy = apply_overrides(stored_policy(stored), overrides)
    except PolicyOverrideError as error:
        raise InvalidRequest.at(["body", *error.loc], error.problem) from error
    try:
        arrangement(policy.parameters, *requested_arrangement(verification))
    except ArrangementError as error:
        # Figures that drop an arrangement a stored tekun case relies on cannot score it.
        field = "support_mode_standards" if error.field == "support_mode" else "care_subsidies"
        raise InvalidRequest.at(
            ["body", "overrides", field], f"verification {verification.id}: {error}"
        ) from error
    return policy


def monthly_benefit(report: wire.Report) -> Decimal:
    return report.benefit.monthly_amount if report.benefit else Decimal("0")
