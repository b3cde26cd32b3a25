"""The delivery loop: sends due deliveries, signed, and settles each attempt.

Runs in every process that runs verifications; a delivery is claimed (a conditional
update) before it is sent, so two processes never send the same attempt, and a process
that dies mid-attempt leaves it to be sent again once the claim lapses: delivery is at
least once, and receivers de-duplicate on the event id. A failed attempt (no answer, or
not 2xx) is retried after `backoff_s × 2^(attempts-1)` (capped at an hour); after
`max_attempts` the delivery is dead, visible in `GET /v1/webhooks/{id}/deliveries` and
sent again by `.../redeliver`.
"""

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import is_database_unavailable
from service.models import OutboxEvent, Webhook, WebhookDelivery
from service.webhook.repository import WebhookRepository
from service.webhook.signature import sign

log = structlog.get_logger(__name__)

CLAIM_S = 60.0
MAX_BACKOFF_S = 3600.0


def body_of(event: OutboxEvent) -> bytes:
    return json.dumps(event.payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookDispatcher:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        *,
        poll_s: float = 1.0,
        backoff_s: float = 5.0,
        max_attempts: int = 8,
        timeout_s: float = 10.0,
        batch: int = 50,
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._forever(), name="webhooks:deliver")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                sent = await self.deliver_due()
            except Exception as error:
                sent = 0
                if not is_database_unavailable(error):
                    log.exception("webhook_pass_failed")
            if sent < self.batch:
                await asyncio.sleep(self.poll_s)

    async def deliver_due(self) -> int:
        """One pass: claim what is due, send it, settle each attempt; how many were sent."""
        now = datetime.now(UTC)
        until = now + timedelta(seconds=CLAIM_S)
        claimed: list[tuple[WebhookDelivery, Webhook, OutboxEvent]] = []
        async with self.session_factory() as session:
            repository = WebhookRepository.from_session(session)
            for delivery, hook, event in await repository.due(now, self.batch):
                if await repository.claim(delivery.id, delivery.next_attempt_at, until):
                    claimed.append((delivery, hook, event))
            await session.commit()
        outcomes = await asyncio.gather(*(self._send(hook, event) for _, hook, event in claimed))
        async with self.session_factory() as session:
            repository = WebhookRepository.from_session(session)
            for (delivery, _, event), (status, error) in zip(claimed, outcomes, strict=True):
                attempts = delivery.attempts + 1
                finished = datetime.now(UTC)
                if status is not None and 200 <= status < 300:
                    values = {"status": "delivered", "delivered_at": finished, "last_error": None}
                elif attempts >= self.max_attempts:
                    values = {"status": "dead", "last_error": error}
                    log.warning("webhook_dead", delivery_id=delivery.id, event_type=event.type)
                else:
                    wait = min(self.backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
                    values = {
                        "next_attempt_at": finished + timedelta(seconds=wait),
                        "last_error": error,
                    }
                await repository.settle(
                    delivery.id, until, attempts=attempts, last_status=status, **values
                )
            await session.commit()
        return len(claimed)

    async def _send(self, hook: Webhook, event: OutboxEvent) -> tuple[int | None, str | None]:
        body = body_of(event)
        headers = {
            "Content-Type": "application/json",
            "Hedui-Event-Id": event.id,
            "Hedui-Event-Type": event.type,
            "Hedui-Signature": sign(hook.secret, int(time.time()), body),
        }
        try:
            response = await self.client.post(
                hook.url, content=body, headers=headers, timeout=self.timeout_s
            )
        except Exception as error:
            # Whatever sending to this receiver raised (a transport error, a URL the client
            # will not send to) is a failed attempt of this delivery alone: the others of
            # the pass are settled as they went.
            return None, type(error).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"
