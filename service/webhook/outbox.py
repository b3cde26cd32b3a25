"""Recording an event in the transaction of what it announces (the transactional outbox).

The event row and one pending delivery per subscribed webhook are written with the
change itself: if that transaction rolls back, no event exists; if it commits, the
delivery loop will send it, at least once. Payloads carry ids, codes and masked
identifiers only: never a full ID number, a name or a balance.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.scope import covers
from service.models import OutboxEvent, Webhook, WebhookDelivery
from service.models.base import new_id, utcnow
from service.webhook.repository import WebhookRepository


async def subscribers(session: AsyncSession) -> list[Webhook]:
    """The active webhooks, read once for several events of one transaction (`record`'s
    `webhooks`)."""
    return await WebhookRepository.from_session(session).active()


async def record(
    session: AsyncSession,
    event_type: str,
    region_code: str,
    data: dict[str, Any],
    *,
    township_code: str | None = None,
    now: datetime | None = None,
    webhooks: Sequence[Webhook] | None = None,
) -> str | None:
    """Write the event and its deliveries (nothing when no webhook wants it); its id. A
    webhook receives the events of its creator's scope: a township key's, those of the
    households of its township only. `webhooks`: the active ones, when the caller has
    read them in this transaction already (`subscribers`)."""
    if webhooks is None:
        webhooks = await subscribers(session)
    receivers = [
        hook
        for hook in webhooks
        if event_type in hook.events and covers(hook.region_prefix, region_code, township_code)
    ]
    if not receivers:
        return None
    now = now or utcnow()
    event_id = new_id()
    if township_code is not None:
        # Said in the event too: a county's receiver routes it to the township's office.
        data = {**data, "township_code": township_code}
    payload = {"id": event_id, "type": event_type, "created_at": now.isoformat(), "data": data}
    session.add(
        OutboxEvent(
            id=event_id, type=event_type, region_code=region_code, payload=payload, created_at=now
        )
    )
    await session.flush()
    session.add_all(
        WebhookDelivery(
            webhook_id=hook.id,
            event_id=event_id,
            status="pending",
            next_attempt_at=now,
            created_at=now,
        )
        for hook in receivers
    )
    await session.flush()
    return event_id
