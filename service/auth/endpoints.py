"""`/v1/apikeys`: list and revoke API keys (admin). Keys are created where the server runs,
with `hedui apikey create`, which prints the token once."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Query, Request

from schemas import apikey as wire
from service.auth.cache import PrincipalCache
from service.auth.service import (
    ApiKeyNotFound,
    ApiKeyRevoked,
    page_api_keys,
    revoke_api_key,
    to_wire,
)
from service.deps import AdminDep, SessionDep
from service.models.base import utcnow
from service.problem_docs import problems
from service.routing import JSONRoute

router = APIRouter(prefix="/v1/apikeys", tags=["apikeys"], route_class=JSONRoute)


@router.get(
    "",
    response_model=wire.ApiKeyPage,
    summary="API keys in the caller's region, newest first",
)
async def list_api_keys(
    session: SessionDep, principal: AdminDep, where: Annotated[wire.ApiKeyQuery, Query()]
) -> wire.ApiKeyPage:
    """Whom each key belongs to, its role and region, when it was created, when it expires,
    when it was last used (to the minute) and whether it still works. Never a token."""
    return await page_api_keys(session, principal, where)


@router.post(
    "/{key_id}/revoke",
    response_model=wire.ApiKey,
    responses=problems(ApiKeyNotFound(), ApiKeyRevoked(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))),
    summary="Revoke an API key (it is kept, with when and why)",
)
async def revoke(
    key_id: str,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    principal: AdminDep,
    body: Annotated[wire.ApiKeyRevoke | None, Body()] = None,
) -> wire.ApiKey:
    """The key is refused by this process from the answer on, and by every other process
    within HEDUI_PRINCIPAL_CACHE_S seconds (5 by default). A key outside the caller's
    region is `404`; one already revoked is `409`."""
    key = await revoke_api_key(
        session,
        key_id,
        reason=body.reason if body else None,
        region_prefix=principal.region_prefix,
    )
    cache: PrincipalCache | None = getattr(request.state, "principals", None)
    if cache is not None:
        # Now, and again once the revocation is committed (after the answer): a request of
        # this key read in between would otherwise be trusted here for the cache's time.
        cache.forget(key.id)
        background.add_task(cache.forget, key.id)
    return to_wire(key, utcnow())
