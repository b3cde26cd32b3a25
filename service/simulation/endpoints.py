"""`POST /v1/policy/simulate`: what would a change of policy figures do?"""

from fastapi import APIRouter

from schemas import report as wire
from service.deps import PolicyAnalystDep, SessionDep
from service.errors import InvalidRequest
from service.problem_docs import problems
from service.routing import JSONRoute
from service.simulation.service import simulate

router = APIRouter(prefix="/v1/policy", tags=["policy"], route_class=JSONRoute)


@router.post(
    "/simulate",
    response_model=wire.SimulationResult,
    responses=problems(
        InvalidRequest.at(
            ["body", "overrides", "colour"], "is not a figure and cannot be overridden"
        )
    ),
    summary="Re-score stored households under changed policy figures",
)
async def simulate_policy(
    body: wire.SimulationRequest, session: SessionDep, principal: PolicyAnalystDep
) -> wire.SimulationResult:
    """E.g. raise Yunnan's urban dibao standard to 700: how many households change
    recommendation, and what does it cost per month? Nothing is stored and no partner is
    asked again: each household is re-scored once, from the stored facts of one
    verification under its stored policy figures with the overrides applied (the version
    gains "+sim"). A household on the roll by its approved verification (not again for
    each re-check or earlier application); one not on the roll by its latest verification
    with the same members; linshi by every application."""
    return await simulate(session, principal, body)
