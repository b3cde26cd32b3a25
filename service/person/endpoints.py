"""`/v1/people`: a person's verifications, for auditors. The ID number is in the body."""

from fastapi import APIRouter, Request

from schemas import person as wire
from schemas import verification as verification_wire
from schemas.identity import mask_id_number
from service.audit.recorder import about
from service.deps import AuditorDep, SessionDep
from service.person.service import person as person_service
from service.routing import JSONRoute

router = APIRouter(prefix="/v1/people", tags=["people"], route_class=JSONRoute)


@router.post(
    "/search",
    response_model=verification_wire.VerificationPage,
    summary="The verifications a person appears in (auditor)",
)
async def search_person(
    request: Request, body: wire.PersonSearch, session: SessionDep, principal: AuditorDep
) -> verification_wire.VerificationPage:
    """Every verification in the caller's region with a member of this ID number, newest
    first; members are masked. The ID number goes in the body (POST) so that it never
    appears in a URL or an access log. Follow `next_cursor` until it is null. The audit
    trail records whom was looked up, the ID number masked."""
    about(
        request,
        region=None,
        detail=f"person {mask_id_number(body.id_number)}",
        blind=person_service.blind(session, body.id_number),
    )
    return await person_service.verifications(session, principal, body)
