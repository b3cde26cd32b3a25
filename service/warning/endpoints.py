"""`/v1/warnings`: the county's early-warning list, acknowledging and resolving."""

from typing import Annotated

from fastapi import APIRouter, Query

from schemas import warning as wire
from schemas.verification import REGION_PREFIX
from service.deps import ReaderDep, SessionDep
from service.errors import Conflict
from service.problem_docs import problems
from service.routing import JSONRoute
from service.warning.service import WarningNotFound
from service.warning.service import warning as warning_service

router = APIRouter(prefix="/v1/warnings", tags=["warnings"], route_class=JSONRoute)


@router.get(
    "",
    response_model=wire.WarningPage,
    summary="Warnings raised by re-checks in the caller's region, newest first",
)
async def list_warnings(
    session: SessionDep,
    principal: ReaderDep,
    where: Annotated[wire.WarningFilter, Query()],
) -> wire.WarningPage:
    """Each warning is one change since the approved report, with evidence from both
    reports (members masked) and the action the re-check's report implies. Follow
    `next_cursor` until it is null."""
    return await warning_service.page(session, principal, where)


@router.get(
    "/summary",
    response_model=wire.WarningSummary,
    summary="Counts of warnings per county, for a county-level overview",
)
async def warning_summary(
    session: SessionDep,
    principal: ReaderDep,
    region_code: Annotated[
        str | None,
        Query(
            pattern=REGION_PREFIX,
            description="Region prefix, within the caller's own region: its counties only",
        ),
    ] = None,
) -> wire.WarningSummary:
    return await warning_service.summary(session, principal, region_code)


@router.get(
    "/{warning_id}",
    response_model=wire.Warning,
    responses=problems(WarningNotFound()),
    summary="One warning",
)
async def get_warning(warning_id: str, session: SessionDep, principal: ReaderDep) -> wire.Warning:
    return await warning_service.read(session, principal, warning_id)


@router.post(
    "/{warning_id}/acknowledge",
    response_model=wire.Warning,
    responses=problems(WarningNotFound(), Conflict("The warning is resolved")),
    summary="Say the warning is being looked into, with a note",
)
async def acknowledge_warning(
    warning_id: str, body: wire.WarningNote, session: SessionDep, principal: ReaderDep
) -> wire.Warning:
    """Only an open warning can be acknowledged (otherwise 409)."""
    return await warning_service.acknowledge(session, principal, warning_id, body.note)


@router.post(
    "/{warning_id}/resolve",
    response_model=wire.Warning,
    responses=problems(WarningNotFound(), Conflict("The warning is resolved")),
    summary="Close the warning, with a note saying what was done",
)
async def resolve_warning(
    warning_id: str, body: wire.WarningNote, session: SessionDep, principal: ReaderDep
) -> wire.Warning:
    """An open or acknowledged warning can be resolved (otherwise 409). Resolving changes
    no benefit: the approver's decision on the re-check does."""
    return await warning_service.resolve(session, principal, warning_id, body.note)
