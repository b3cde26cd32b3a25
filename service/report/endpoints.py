"""`/v1/verifications/{id}/report`, `/rescore` and `/decision`."""

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from schemas import report as report_wire
from schemas import verification as wire
from service.audit.recorder import about
from service.deps import ApproverDep, CatalogDep, ReaderDep, SessionDep, SettingsDep
from service.errors import (
    AlreadyOnTheRoll,
    DecisionExists,
    Forbidden,
    InvalidRequest,
    NearRelativeRegisteredSince,
    RecheckSuperseded,
    RecipientLeft,
    ReportNotReady,
    StaleChange,
    VerificationNotFound,
    VerificationWithdrawn,
)
from service.problem_docs import problems
from service.report.decision import decide
from service.report.rescore import RecordsPurged, rendered, rescore
from service.routing import JSONRoute
from service.verification.service import verification as verification_service

router = APIRouter(prefix="/v1/verifications", tags=["reports"], route_class=JSONRoute)

LANGUAGE_HEADER = Header(
    description="`zh` (default) or `en`: the language of finding messages; figures are the same"
)


def preferred_language(accept_language: str | None) -> str:
    """The best of zh/en by the header's q-values; zh when neither is asked for."""
    best, best_q = "zh", 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in ("zh", "en") and q > best_q:
            best, best_q = language, q
    return best


@router.get(
    "/{verification_id}/report",
    response_model=report_wire.Report,
    responses=problems(
        VerificationNotFound(),
        ReportNotReady("running"),
        VerificationWithdrawn(VerificationWithdrawn.NO_REPORT),
    ),
    summary="The scored, explainable report (409 until completed)",
)
async def get_report(
    verification_id: str,
    response: Response,
    session: SessionDep,
    principal: ReaderDep,
    accept_language: Annotated[str | None, LANGUAGE_HEADER] = None,
) -> report_wire.Report:
    """The report as stored. With `Accept-Language: en` the messages are rendered in English
    from the same stored facts and policy figures; `report_hash` still names the stored
    report, which is what a decision is bound to. Once the facts are purged (the
    verification withdrawn, or its records past retention) nothing can be rendered anew:
    the report comes as stored, in Chinese (`Content-Language: zh`)."""
    verification = await verification_service.get(session, principal, verification_id)
    report, language = await rendered(session, verification, preferred_language(accept_language))
    response.headers["Content-Language"] = language
    return report


@router.post(
    "/{verification_id}/rescore",
    response_model=report_wire.Rescore,
    responses=problems(
        VerificationNotFound(),
        ReportNotReady("running"),
        VerificationWithdrawn(VerificationWithdrawn.NOT_RESCORED),
        RecordsPurged("2027-11-20"),
        InvalidRequest.at(["body", "as_of"], "no policy in force on 2019-01-01"),
    ),
    summary="Rebuild the report from stored facts, under the original or another policy",
)
async def rescore_verification(
    verification_id: str,
    session: SessionDep,
    principal: ReaderDep,
    catalog: CatalogDep,
    body: report_wire.RescoreRequest | None = None,
    accept_language: Annotated[str | None, LANGUAGE_HEADER] = None,
) -> report_wire.Rescore:
    """Without `as_of`, the stored policy figures are used and the rebuilt report is
    identical to the stored one (a check that the decision can be reproduced). With
    `as_of`, the policy in force on that date applies. Nothing is stored; no partner is
    asked again."""
    verification = await verification_service.get(session, principal, verification_id)
    return await rescore(
        session,
        verification,
        catalog,
        as_of=body.as_of if body else None,
        language=preferred_language(accept_language),
    )


@router.post(
    "/{verification_id}/decision",
    status_code=status.HTTP_201_CREATED,
    response_model=wire.Decision,
    responses=problems(
        VerificationNotFound(),
        Forbidden("Whoever submitted a verification cannot decide it (separation of duties)"),
        ReportNotReady("running"),
        DecisionExists(),
        VerificationWithdrawn(VerificationWithdrawn.NOT_DECIDED),
        AlreadyOnTheRoll("530102********1231", "dibao"),
        NearRelativeRegisteredSince("530102********1223", 0),
        RecipientLeft("2027-06-30"),
        RecheckSuperseded(),
        RecheckSuperseded(household_changed=True),
        StaleChange("2026-12-01T09:30:00+00:00"),
    ),
    summary="Record the approver's decision on a completed verification",
)
async def create_decision(
    verification_id: str,
    body: wire.DecisionCreate,
    request: Request,
    session: SessionDep,
    principal: ApproverDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> wire.Decision:
    """Binds the decision to the report's hash and policy version. Whoever submitted the
    verification cannot decide it; a verification has one decision (a second is 409).

    An approval of a dibao or tekun household puts it on the roll of recipients
    (`GET /v1/recipients`) with its re-check class and the monthly benefit it grants: the
    report's, or, when the report computed none (`review`, `ineligible`), the one the
    approver states (`monthly_benefit`, required then). On a re-check's verification, an
    approval keeps the recipient with that benefit and a rejection takes it off the roll
    with the reason. The decision records the benefit granted.

    A household on the roll whose members changed (a birth, a death, a marriage, a member
    moving out) is verified with its members as they now are, and approved with
    `recipient_id`: the recipient keeps its id and history, and its household, benefit,
    authorization and re-check schedule are this verification's from today. A re-check
    begun before the change is decided no more (`recheck-superseded`)."""
    verification = await verification_service.get(session, principal, verification_id)
    if body.recipient_id is not None:
        # The trail says which household on the roll the decision is about, refused or not.
        about(
            request,
            region=verification.region_code,
            detail=f"change of the household of recipient {body.recipient_id}",
        )
    return await decide(
        session, principal, verification, body, catalog=catalog, today=settings.today()
    )
