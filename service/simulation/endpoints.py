"""`POST /v1/policy/simulate`: what would a change of policy figures do?"""

from fastapi import APIRouter

from schemas import report as wire
from service.deps import PolicyAnalystDep, SessionDep
from service.errors import PROBLEMS
from service.routing import JSONRoute
from service.simulation.service import simulate

router = APIRouter(prefix="/v1/policy", tags=["policy"], route_class=JSONRoute)


@router.post(
    "/simulate",
    response_model=wire.SimulationResult,
    responses=PROBLEMS,
    summary="Re-score stored verifications under changed policy figures",
)
async def simulate_policy(
    body: wire.SimulationRequest, session: SessionDep, principal: PolicyAnalystDep
) -> wire.SimulationResult:
    """E.g. raise Yunnan's urban dibao standard to 700: how many households change
    recommendation, and what does it cost per month? Nothing is stored and no partner is
    asked again: each verification is re-scored from its stored facts under its stored
    policy figures with the overrides applied (the version gains "+sim")."""
    return await simulate(session, principal, body)
