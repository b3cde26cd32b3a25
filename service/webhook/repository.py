"""All SQL about webhooks, outbox events and deliveries."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update

from service.auth.principal import Principal
from service.auth.scope import scoped
from service.models import OutboxEvent, Webhook, WebhookDelivery
from service.pagination import newer_first_after
from service.repository import Repository

WEBHOOK_LOCK = 0x68656477  # "hedw": with a region's hash, the lock on its webhooks


class WebhookRepository(Repository):
    async def add(self, item: Webhook | OutboxEvent) -> None:
        self.session.add(item)
        await self.session.flush()

    @staticmethod
    def any_active() -> ColumnElement[bool]:
        """Whether some webhook is active, as an expression to read within another
        statement."""
        return select(Webhook.id).where(Webhook.active.is_(True)).exists()

    async def active(self) -> list[Webhook]:
        return list(
            (await self.session.scalars(select(Webhook).where(Webhook.active.is_(True)))).all()
        )

    async def get(self, webhook_id: str, *, scope: Principal | str) -> Webhook | None:
        """The webhook, if its creator's region lies inside `scope`."""
        return await self.session.scalar(
            scoped(select(Webhook).where(Webhook.id == webhook_id), scope, Webhook.region_prefix)
        )

    async def hold_region(self, region_prefix: str) -> None:
        """Until this transaction ends, no other adds a webhook for `region_prefix`: its
        count of active ones and the one it adds are one step (the limit holds when many
        are added at once)."""
        await self._one_at_a_time(WEBHOOK_LOCK, region_prefix, Webhook)

    async def active_count(self, region_prefix: str) -> int:
        """Active webhooks subscribed by keys of exactly this region."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(Webhook)
            .where(Webhook.region_prefix == region_prefix, Webhook.active.is_(True))
        )
        return int(count or 0)

    async def deactivate(self, webhook_id: str, now: datetime) -> None:
        """No event reaches it any more; what was waiting to be sent to it ends `dead`."""
        await self.session.execute(
            update(Webhook).where(Webhook.id == webhook_id).values(active=False)
        )
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status == "pending")
            .values(status="dead", last_error="the webhook was removed", next_attempt_at=now)
        )

    async def listed(
        self,
        *,
        scope: Principal | str,
        active: bool | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Webhook]:
        """A page of the webhooks in `scope`, newest first."""
        statement = scoped(select(Webhook), scope, Webhook.region_prefix)
        if active is not None:
            statement = statement.where(Webhook.active.is_(active))
        if after is not None:
            statement = statement.where(newer_first_after(Webhook.created_at, Webhook.id, after))
        statement = statement.order_by(Webhook.created_at.desc(), Webhook.id.desc()).limit(limit)
        return list((await self.session.scalars(statement)).all())

    async def deliveries(
        self,
        webhook_id: str,
        *,
        status: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[tuple[WebhookDelivery, str]]:
        statement = (
            select(WebhookDelivery, OutboxEvent.type)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.webhook_id == webhook_id)
        )
        if status is not None:
            statement = statement.where(WebhookDelivery.status == status)
        if after is not None:
            statement = statement.where(
                newer_first_after(WebhookDelivery.created_at, WebhookDelivery.id, after)
            )
        statement = statement.order_by(
            WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()
        ).limit(limit)
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def delivery(
        self, webhook_id: str, delivery_id: str
    ) -> tuple[WebhookDelivery, str] | None:
        row = (
            await self.session.execute(
                select(WebhookDelivery, OutboxEvent.type)
                .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.id == delivery_id)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def due(
        self, now: datetime, limit: int
    ) -> list[tuple[WebhookDelivery, Webhook, OutboxEvent]]:
        rows = await self.session.execute(
            select(WebhookDelivery, Webhook, OutboxEvent)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                Webhook.active.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def claim(self, delivery_id: str, seen: datetime, until: datetime) -> bool:
        """Take a due delivery for one attempt: only one process wins it."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at == seen,
            )
            .values(next_attempt_at=until)
        )
        return bool(getattr(result, "rowcount", 0))

    async def settle(self, delivery_id: str, claimed_until: datetime, **values: Any) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at == claimed_until,
            )
            .values(**values)
        )

    async def redeliver(self, delivery_id: str, now: datetime) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            # A new round of attempts, due now; the last attempt's status and error stay
            # until the next attempt replaces them (why it was dead, or is retried).
            .values(status="pending", attempts=0, next_attempt_at=now)
        )
