"""`/v1/audit`: the audit trail, for auditors (and admins)."""

from typing import Annotated

from fastapi import APIRouter, Query

from schemas import audit as wire
from service.audit.service import audit_reader
from service.deps import AuditorDep, SessionDep
from service.routing import JSONRoute

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=JSONRoute)


@router.get(
    "",
    response_model=wire.AuditPage,
    summary="Audit events in the caller's region, newest first",
)
async def list_audit_events(
    session: SessionDep,
    principal: AuditorDep,
    where: Annotated[wire.AuditQuery, Query()],
) -> wire.AuditPage:
    """Who created, read or decided what, and what was refused. Filter by actor, action,
    object or time; to filter by person, use `POST /v1/audit/search` (the ID number goes in
    the body). Reading the trail is itself recorded."""
    return await audit_reader.page(session, principal, where)


@router.post(
    "/search",
    response_model=wire.AuditPage,
    summary="Audit events about a person, or by any other filter",
)
async def search_audit_events(
    body: wire.AuditSearch, session: SessionDep, principal: AuditorDep
) -> wire.AuditPage:
    """Events about every verification whose household includes `id_number` (e.g. who read
    that person's report), combined with the other filters."""
    return await audit_reader.page(session, principal, body)
