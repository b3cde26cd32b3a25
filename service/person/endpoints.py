"""`/v1/people`: a person's verifications, for auditors. The ID number is in the body."""

from fastapi import APIRouter

from schemas import person as wire
from schemas import verification as verification_wire
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
    body: wire.PersonSearch, session: SessionDep, principal: AuditorDep
) -> verification_wire.VerificationPage:
    """Every verification in the caller's region with a member of this ID number, newest
    first; members are masked. The ID number goes in the body (POST) so that it never
    appears in a URL or an access log. Follow `next_cursor` until it is null."""
    return await person_service.verifications(session, principal, body)
