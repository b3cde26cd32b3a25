"""`/v1/webhooks`: subscribe, list, and see or retry deliveries."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from schemas import webhook as wire
from service.audit.recorder import created
from service.deps import IntegratorDep, SessionDep, SettingsDep
from service.errors import Conflict, InvalidRequest
from service.problem_docs import problems
from service.routing import JSONRoute
from service.webhook.service import (
    MAX_ACTIVE_PER_REGION,
    NOT_ALLOWED_ANY_MORE,
    WebhookNotFound,
    to_wire,
)
from service.webhook.service import webhook as webhook_service

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=JSONRoute)


SIGNING = """Every delivery is a `POST` of the event as JSON,
`{"id": "<event id>", "type": "warning.raised", "created_at": "…", "data": {…}}`, with
headers `Hedui-Event-Id`, `Hedui-Event-Type` and
`Hedui-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the
secret>`. Verify the signature (constant-time compare) and refuse a `t` more than 5
minutes from your clock. Delivery is at least once: answer 2xx quickly and de-duplicate
on the event id. Failed attempts are retried with exponential backoff, and end `dead`
after HEDUI_WEBHOOK_MAX_ATTEMPTS. Bodies carry ids, codes and masked identifiers only."""


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=wire.Webhook,
    responses=problems(
        InvalidRequest.at(["body", "url"], "its host is not in HEDUI_WEBHOOK_HOSTS"),
        Conflict(
            f"The region has {MAX_ACTIVE_PER_REGION} active webhooks, the most it may: "
            "remove one (DELETE /v1/webhooks/{id}) first"
        ),
    ),
    summary="Subscribe a URL to events of the caller's region (at most 20 active per region)",
    description=SIGNING,
)
async def create_webhook(
    request: Request,
    body: wire.WebhookCreate,
    session: SessionDep,
    principal: IntegratorDep,
    settings: SettingsDep,
) -> wire.Webhook:
    webhook = await webhook_service.create(session, principal, body, settings.webhook_host_list())
    created(request, webhook.id)
    return webhook


@router.get(
    "",
    response_model=wire.WebhookPage,
    summary="Webhooks, newest first (`active=true` for those events are sent to)",
)
async def list_webhooks(
    session: SessionDep,
    principal: IntegratorDep,
    where: Annotated[wire.WebhookFilter, Query()],
) -> wire.WebhookPage:
    return await webhook_service.listed(session, principal, where)


@router.get(
    "/{webhook_id}",
    response_model=wire.Webhook,
    responses=problems(WebhookNotFound()),
    summary="One webhook",
)
async def get_webhook(
    webhook_id: str, session: SessionDep, principal: IntegratorDep
) -> wire.Webhook:
    return to_wire(await webhook_service.get(session, principal, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    # No body, so no Content-Type: not the JSON response class of the other routes.
    response_class=Response,
    responses=problems(WebhookNotFound()),
    summary="Remove a webhook: no event is sent to it any more",
)
async def remove_webhook(webhook_id: str, session: SessionDep, principal: IntegratorDep) -> None:
    """It stays listed, `active: false`, with its deliveries; those still waiting end
    `dead`. Removing it again changes nothing."""
    await webhook_service.remove(session, principal, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=wire.DeliveryPage,
    responses=problems(WebhookNotFound()),
    summary="Deliveries of a webhook, newest first (filter `status=dead` for the failed)",
)
async def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    principal: IntegratorDep,
    where: Annotated[wire.DeliveryFilter, Query()],
) -> wire.DeliveryPage:
    return await webhook_service.deliveries(session, principal, webhook_id, where)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=wire.WebhookDelivery,
    responses=problems(
        WebhookNotFound(),
        WebhookNotFound("delivery"),
        Conflict("The webhook was removed: nothing is sent to it any more"),
        Conflict(NOT_ALLOWED_ANY_MORE),
    ),
    summary="Send a delivery again (a dead one, or a delivered one the receiver lost)",
)
async def redeliver(
    webhook_id: str,
    delivery_id: str,
    session: SessionDep,
    principal: IntegratorDep,
    settings: SettingsDep,
) -> wire.WebhookDelivery:
    """The same event (same id) is sent again, with its attempts counted afresh; `409` if
    its host is no longer in the allow-list."""
    return await webhook_service.redeliver(
        session, principal, webhook_id, delivery_id, settings.webhook_host_list()
    )
