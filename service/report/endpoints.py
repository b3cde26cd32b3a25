"""`/v1/verifications/{id}/report` and `/decision`."""

from fastapi import APIRouter, status

from schemas import report as report_wire
from schemas import verification as wire
from service.deps import ApproverDep, ReaderDep, SessionDep
from service.report.decision import decide
from service.report.service import stored_report
from service.verification.endpoints import PROBLEMS
from service.verification.service import verification as verification_service

router = APIRouter(prefix="/v1/verifications", tags=["reports"])


@router.get(
    "/{verification_id}/report",
    response_model=report_wire.Report,
    responses=PROBLEMS,
    summary="The scored, explainable report (409 until completed)",
)
async def get_report(
    verification_id: str, session: SessionDep, principal: ReaderDep
) -> report_wire.Report:
    verification = await verification_service.get(session, principal, verification_id)
    return await stored_report(session, verification)


@router.post(
    "/{verification_id}/decision",
    status_code=status.HTTP_201_CREATED,
    response_model=wire.Decision,
    responses=PROBLEMS,
    summary="Record the approver's decision on a completed verification",
)
async def create_decision(
    verification_id: str, body: wire.DecisionCreate, session: SessionDep, principal: ApproverDep
) -> wire.Decision:
    verification = await verification_service.get(session, principal, verification_id)
    return await decide(session, principal, verification, body)
