"""`/v1/near-relatives`: the near-relative registry (近亲属备案)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from schemas import near_relative as wire
from schemas.verification import REGION_PREFIX
from service.audit.recorder import created
from service.deps import RegistrarDep, RegistryReaderDep, SessionDep
from service.errors import OutsideRegion
from service.near_relative.service import (
    NearRelativeDuplicate,
    NearRelativeNotFound,
    NearRelativeRevoked,
)
from service.near_relative.service import near_relative as near_relative_service
from service.problem_docs import problems
from service.routing import JSONRoute

router = APIRouter(prefix="/v1/near-relatives", tags=["near-relatives"], route_class=JSONRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=wire.NearRelative,
    responses=problems(
        OutsideRegion(), NearRelativeDuplicate("2b7e4f1c-93a0-4d6e-8c15-6f0a9d3e7b42")
    ),
    summary="Register a staff member's near relative",
)
async def create_near_relative(
    request: Request, body: wire.NearRelativeCreate, session: SessionDep, principal: RegistrarDep
) -> wire.NearRelative:
    """Verifications whose household includes this person get a finding the approver sees.

    `region_code` must lie inside the caller's region. The answer masks the ID number and
    the names.
    """
    registered = await near_relative_service.create(session, principal, body)
    created(request, registered.id)
    return registered


@router.get(
    "",
    response_model=wire.NearRelativePage,
    summary="List registrations in the caller's region, newest first",
)
async def list_near_relatives(
    session: SessionDep,
    principal: RegistryReaderDep,
    region_code: Annotated[
        str | None,
        Query(
            pattern=REGION_PREFIX,
            description="Region prefix, within the caller's own region",
        ),
    ] = None,
    revoked: Annotated[
        bool | None,
        Query(description="true: only revoked registrations; false: only those in force"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> wire.NearRelativePage:
    return await near_relative_service.page(
        session, principal, region_code=region_code, revoked=revoked, limit=limit, cursor=cursor
    )


@router.post(
    "/{registration_id}/revoke",
    response_model=wire.NearRelative,
    responses=problems(NearRelativeNotFound(), NearRelativeRevoked()),
    summary="Revoke a registration (it is kept, with who revoked it, when and why)",
)
async def revoke_near_relative(
    registration_id: str,
    body: wire.NearRelativeRevoke,
    session: SessionDep,
    principal: RegistrarDep,
) -> wire.NearRelative:
    """A registration is never deleted; revoking it twice answers `409`."""
    return await near_relative_service.revoke(session, principal, registration_id, body)
