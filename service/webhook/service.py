"""Subscribing webhooks and looking at their deliveries."""

from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.declarative.spec import DEFAULT_PORTS, URL_TEXT, host_allowed, well_formed_host
from schemas import webhook as wire
from service.auth.principal import Principal, shown_region
from service.errors import Conflict, InvalidRequest, NotFound
from service.models import Webhook, WebhookDelivery
from service.models.base import utcnow
from service.pagination import decode_cursor, listing, next_cursor
from service.webhook.repository import WebhookRepository


class WebhookNotFound(NotFound):
    def __init__(self, what: str = "webhook") -> None:
        super().__init__(f"No such {what}")


def checked_url(url: str, allowed: list[str]) -> str:
    """An http(s) URL to a host in the allow-list, or 422 naming `url` (so hedui cannot be
    pointed at internal addresses)."""
    if not URL_TEXT.fullmatch(url):
        # A space, a tab or any other character a URL cannot hold as is: refused here, not
        # found out at every delivery.
        raise InvalidRequest.at(
            ["body", "url"], "must be printable ASCII (percent-encode the rest)"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as error:
        raise InvalidRequest.at(["body", "url"], "not a URL") from error
    if port == 0:
        raise InvalidRequest.at(["body", "url"], "not a URL: port 0")
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest.at(["body", "url"], "must be an http or https URL with a host")
    if parts.username or parts.password:
        raise InvalidRequest.at(["body", "url"], "must not carry credentials")
    if not well_formed_host(host):
        raise InvalidRequest.at(["body", "url"], "its host is not a name or an address")
    if not host_allowed(host, allowed, port or DEFAULT_PORTS[parts.scheme]):
        raise InvalidRequest.at(
            ["body", "url"],
            "host is not in the allow-list (HEDUI_WEBHOOK_HOSTS)"
            if allowed
            else "no webhook host is allowed yet: the operator sets HEDUI_WEBHOOK_HOSTS "
            "(comma-separated hosts) and restarts hedui",
        )
    return url


def still_allowed(url: str, allowed: list[str]) -> bool:
    """Would `url` be registered now (`checked_url`): read again at every delivery and
    redelivery, so a host taken off the allow-list is sent nothing more."""
    try:
        checked_url(url, allowed)
    except InvalidRequest:
        return False
    return True


NOT_ALLOWED_ANY_MORE = (
    "The webhook's host is not in the allow-list (HEDUI_WEBHOOK_HOSTS) any more: nothing is "
    "sent to it; once the operator allows it again (and restarts hedui), redeliver"
)


MAX_ACTIVE_PER_REGION = 20
"""Active webhooks the keys of one region may have: every event is sent to each of them."""


class WebhookService:
    async def create(
        self,
        session: AsyncSession,
        principal: Principal,
        body: wire.WebhookCreate,
        allowed_hosts: list[str],
    ) -> wire.Webhook:
        repository = WebhookRepository.from_session(session)
        await repository.hold_region(principal.region_prefix)
        if await repository.active_count(principal.region_prefix) >= MAX_ACTIVE_PER_REGION:
            raise Conflict(
                f"The region has {MAX_ACTIVE_PER_REGION} active webhooks, the most it may: "
                "remove one (DELETE /v1/webhooks/{id}) first"
            )
        hook = Webhook(
            url=checked_url(body.url, allowed_hosts),
            events=list(body.events),
            secret=body.secret,
            region_prefix=principal.region_prefix,
            active=True,
            created_by=principal.key_id,
            created_at=utcnow(),
        )
        await repository.add(hook)
        return to_wire(hook)

    async def remove(self, session: AsyncSession, principal: Principal, webhook_id: str) -> None:
        """Unsubscribe: no event is sent to it any more (its deliveries stay listed). Removing
        a removed one changes nothing."""
        hook = await self.get(session, principal, webhook_id)
        if hook.active:
            await WebhookRepository.from_session(session).deactivate(hook.id, utcnow())

    async def listed(
        self, session: AsyncSession, principal: Principal, where: wire.WebhookFilter
    ) -> wire.WebhookPage:
        listed = listing("webhooks", where)
        hooks = await WebhookRepository.from_session(session).listed(
            scope=principal,
            active=where.active,
            limit=where.limit + 1,
            after=decode_cursor(where.cursor, listed) if where.cursor else None,
        )
        return wire.WebhookPage(
            items=[to_wire(hook) for hook in hooks[: where.limit]],
            next_cursor=next_cursor(
                hooks, where.limit, lambda hook: (hook.created_at, hook.id), listed
            ),
        )

    async def get(self, session: AsyncSession, principal: Principal, webhook_id: str) -> Webhook:
        hook = await WebhookRepository.from_session(session).get(webhook_id, scope=principal)
        if hook is None:
            raise WebhookNotFound()
        return hook

    async def deliveries(
        self,
        session: AsyncSession,
        principal: Principal,
        webhook_id: str,
        where: wire.DeliveryFilter,
    ) -> wire.DeliveryPage:
        hook = await self.get(session, principal, webhook_id)
        listed = listing(f"webhooks/{hook.id}/deliveries", where)
        rows = await WebhookRepository.from_session(session).deliveries(
            hook.id,
            status=where.status.value if where.status else None,
            limit=where.limit + 1,
            after=decode_cursor(where.cursor, listed) if where.cursor else None,
        )
        return wire.DeliveryPage(
            items=[delivery_to_wire(d, t) for d, t in rows[: where.limit]],
            next_cursor=next_cursor(
                rows, where.limit, lambda r: (r[0].created_at, r[0].id), listed
            ),
        )

    async def redeliver(
        self,
        session: AsyncSession,
        principal: Principal,
        webhook_id: str,
        delivery_id: str,
        allowed_hosts: list[str],
    ) -> wire.WebhookDelivery:
        hook = await self.get(session, principal, webhook_id)
        repository = WebhookRepository.from_session(session)
        found = await repository.delivery(hook.id, delivery_id)
        if found is None:
            raise WebhookNotFound("delivery")
        if not hook.active:
            raise Conflict("The webhook was removed: nothing is sent to it any more")
        if not still_allowed(hook.url, allowed_hosts):
            raise Conflict(NOT_ALLOWED_ANY_MORE)
        await repository.redeliver(delivery_id, utcnow())
        await session.refresh(found[0])
        return delivery_to_wire(*found)


def to_wire(hook: Webhook) -> wire.Webhook:
    return wire.Webhook(
        id=hook.id,
        url=hook.url,
        events=hook.events,
        region_prefix=shown_region(hook.region_prefix),
        active=hook.active,
        created_at=hook.created_at,
    )


def delivery_to_wire(delivery: WebhookDelivery, event_type: str) -> wire.WebhookDelivery:
    return wire.WebhookDelivery(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=event_type,
        status=wire.DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


webhook = WebhookService()
