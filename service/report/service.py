"""Turning stored facts into the report the approver reads.

Reads only what earlier steps stored (members, source rows) and the policy version; it
never calls a partner, so a report can be rebuilt identically years later.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import report as wire
from schemas.assessment import AssessmentInput, HouseholdMember, NearRelativeMatch, SourceOutcome
from schemas.evidence import Record
from schemas.policy import ResolvedPolicy
from schemas.verification import CareGrade, SourceStatus, SupportMode, VerificationStatus
from service.errors import ReportNotReady, VerificationWithdrawn
from service.models import Report, Verification
from service.policy.arrangement import arrangement
from service.policy.scoring import assess
from service.report.repository import ReportRepository
from service.verification.stored import StoredVerification

_records = TypeAdapter(list[Record])
_support_mode: TypeAdapter[SupportMode | None] = TypeAdapter(SupportMode | None)
_care_grade: TypeAdapter[CareGrade | None] = TypeAdapter(CareGrade | None)


def requested_arrangement(
    verification: StoredVerification,
) -> tuple[SupportMode | None, CareGrade | None]:
    """The tekun support mode and care grade stored with the request."""
    return (
        _support_mode.validate_python(verification.support_mode),
        _care_grade.validate_python(verification.care_grade),
    )


def assessment_input(
    verification: StoredVerification,
    near_relatives: tuple[NearRelativeMatch, ...] = (),
    *,
    sources: tuple[SourceOutcome, ...] | None = None,
) -> AssessmentInput:
    """The scorer's input from a verification and its stored rows (ORM objects, or the
    rows a claim reads); `sources`: the outcomes to score instead of the stored source
    rows."""
    support_mode, care_grade = requested_arrangement(verification)
    return AssessmentInput(
        program=verification.program,
        area=verification.area,
        as_of=verification.as_of,
        members=tuple(
            HouseholdMember(
                id_number=member.id_number,
                name=member.name,
                relation=member.relation,
                declared_monthly_income=member.declared_monthly_income,
            )
            for member in verification.members
        ),
        sources=tuple(
            SourceOutcome(
                source=row.source,
                status=SourceStatus(row.status),
                # A pending row holds no records (made with none; a settle fills it and
                # moves it out of pending): not opening them is 6 decryptions fewer for a
                # worker's claim of a new household.
                records=()
                if row.status == SourceStatus.pending.value
                else tuple(_records.validate_python(row.records or [])),
                fetched_at=row.fetched_at,
                detail=row.detail,
                connector_version=row.connector_version,
            )
            for row in verification.sources
        )
        if sources is None
        else sources,
        near_relatives=near_relatives,
        support_mode=support_mode,
        care_grade=care_grade,
    )


@dataclass(frozen=True, slots=True)
class BuiltReport:
    """A report and its JSON form (`report.model_dump(mode="json")`), dumped once for both
    its hash and its stored body."""

    report: wire.Report
    body: dict[str, Any]


_ASSESSMENT_FIELDS = tuple(wire.Assessment.model_fields)


def build_report(
    verification_id: str,
    region_code: str,
    inputs: AssessmentInput,
    policy: ResolvedPolicy,
    *,
    language: str = "zh",
    generated_at: datetime | None = None,
) -> BuiltReport:
    """The report of `inputs` under `policy`, with its hash, and the body `row_values`
    stores."""
    assessment = assess(inputs, policy.parameters, language=language)
    parameters = policy.parameters
    applied = arrangement(parameters, inputs.support_mode, inputs.care_grade)
    report = wire.Report(
        # The assessment's validated parts as they are (not dumped and validated again).
        **{name: getattr(assessment, name) for name in _ASSESSMENT_FIELDS},
        verification_id=verification_id,
        policy=wire.PolicyRef(
            region_code=region_code,
            program=parameters.program,
            area=parameters.area,
            version=parameters.version,
            monthly_standard=applied.monthly_standard,
            support_mode=applied.support_mode,
            care_grade=applied.care_grade,
            content_hash=policy.content_hash,
            effective_from=parameters.effective_from.isoformat(),
            parameters=parameters,
        ),
        sources=[
            wire.ReportSource(
                source=source.source,
                status=source.status,
                fetched_at=source.fetched_at,
                detail=source.detail,
                connector_version=source.connector_version,
            )
            for source in inputs.sources
        ],
        generated_at=generated_at or datetime.now(UTC),
    )
    # `report_hash` is the last field: the body with it appended is the model's dump.
    body = report.model_dump(mode="json", exclude={"report_hash"})
    digest = _content_hash({name: value for name, value in body.items() if name != "generated_at"})
    body["report_hash"] = digest
    return BuiltReport(report.model_copy(update={"report_hash": digest}), body)


def report_hash(report: wire.Report) -> str:
    """SHA-256 over the report's content, excluding when it was generated."""
    return _content_hash(report.model_dump(mode="json", exclude={"generated_at", "report_hash"}))


def _content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


def canonical_json(content: Any) -> bytes:
    """The form a report's hash is taken over: `json.dumps(content, sort_keys=True,
    ensure_ascii=False, separators=(",", ":"))` in UTF-8, as every stored hash was.
    orjson writes the same bytes for what a report holds (text, integers, booleans, null,
    lists, objects: a property test holds them equal) several times faster; what orjson
    refuses (an integer beyond 64 bits) takes the standard library's way."""
    try:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text.encode()


def row_values(
    built: BuiltReport, policy: ResolvedPolicy, inputs: AssessmentInput
) -> dict[str, Any]:
    """Column values of the stored report: its body as it was dumped for its hash."""
    return {
        "verification_id": built.report.verification_id,
        "body": built.body,
        "report_hash": built.report.report_hash,
        "policy_version": policy.parameters.version,
        "policy_hash": policy.content_hash,
        # The registry changes over time; what it said when this report was made is kept
        # so that the report can be rebuilt identically.
        "near_relatives": [match.model_dump(mode="json") for match in inputs.near_relatives],
        "created_at": datetime.now(UTC),
    }


@dataclass(frozen=True)
class StoredReport:
    report: wire.Report
    near_relatives: tuple[NearRelativeMatch, ...]

    @classmethod
    def of(cls, row: Report) -> "StoredReport":
        return cls(
            report=wire.Report.model_validate(row.body),
            near_relatives=tuple(
                NearRelativeMatch.model_validate(m) for m in row.near_relatives or []
            ),
        )


async def stored_report_with_inputs(
    session: AsyncSession, verification: Verification
) -> StoredReport:
    withdrawn = verification.status == VerificationStatus.withdrawn.value
    if verification.status != VerificationStatus.completed.value and not withdrawn:
        raise ReportNotReady(verification.status)
    # A report made before a withdrawal stays readable, as it was stored.
    row = await ReportRepository.from_session(session).get(verification.id)
    if row is None and withdrawn:
        raise VerificationWithdrawn(VerificationWithdrawn.NO_REPORT)
    if row is None:
        raise ReportNotReady(verification.status)
    return StoredReport.of(row)
