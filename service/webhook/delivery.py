"""The delivery loop: sends due deliveries, signed, and settles each attempt.

Runs in every process that runs verifications; a delivery is claimed (a conditional
update) before it is sent, so two processes never send the same attempt, and a process
that dies mid-attempt leaves it to be sent again once the claim lapses: delivery is at
least once, and receivers de-duplicate on the event id. A failed attempt (no answer, or
not 2xx) is retried after `backoff_s × 2^(attempts-1)` (capped at an hour); after
`max_attempts` the delivery is dead, visible in `GET /v1/webhooks/{id}/deliveries` and
sent again by `.../redeliver`.

The allow-list (`HEDUI_WEBHOOK_HOSTS`) is read at every attempt as well as at registration:
a host the operator took off it is sent nothing more. Its deliveries fail with that reason
(`NOT_ALLOWED`) and end dead as any failing delivery does; redelivering one is refused
while the host is off the list, and accepted once it is back.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import is_database_unavailable
from service.models import OutboxEvent, Webhook, WebhookDelivery
from service.webhook.repository import WebhookRepository
from service.webhook.service import still_allowed
from service.webhook.signature import sign

log = structlog.get_logger(__name__)

CLAIM_S = 60.0
MAX_BACKOFF_S = 3600.0
NOT_ALLOWED = "host not in HEDUI_WEBHOOK_HOSTS"
"""Why an attempt to a host taken off the allow-list failed (nothing was sent)."""


def body_of(event: OutboxEvent) -> bytes:
    return json.dumps(event.payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookDispatcher:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        *,
        allowed_hosts: Sequence[str],
        poll_s: float = 1.0,
        backoff_s: float = 5.0,
        max_attempts: int = 8,
        timeout_s: float = 10.0,
        batch: int = 50,
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.allowed_hosts = list(allowed_hosts)
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._forever(), name="webhooks:deliver")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for attempt in list(self._sending):
            attempt.cancel()  # its claim lapses and the delivery is sent again
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _forever(self) -> None:
        while True:
            try:
                sent = await self.deliver_due(wait=False)
            except Exception as error:
                sent = 0
                if not is_database_unavailable(error):
                    log.exception("webhook_pass_failed")
            if sent == 0 or len(self._sending) >= self.batch:
                await asyncio.sleep(self.poll_s)

    async def deliver_due(self, *, wait: bool = True) -> int:
        """One pass: claim what is due and send each, settling each attempt as it ends; how
        many were claimed. Each attempt is bounded as a whole (`timeout_s`), and one
        receiver's slowness holds up no other delivery: without `wait`, the pass returns
        once they are sent off, and the next pass claims more while they run (at most
        `batch` at once)."""
        now = datetime.now(UTC)
        until = now + timedelta(seconds=CLAIM_S)
        room = self.batch - len(self._sending)
        if room <= 0:
            return 0
        claimed: list[tuple[WebhookDelivery, Webhook, OutboxEvent]] = []
        async with self.session_factory() as session:
            repository = WebhookRepository.from_session(session)
            for delivery, hook, event in await repository.due(now, room):
                if await repository.claim(delivery.id, delivery.next_attempt_at, until):
                    claimed.append((delivery, hook, event))
            await session.commit()
        attempts = [
            asyncio.create_task(self._attempt(delivery, hook, event, until))
            for delivery, hook, event in claimed
        ]
        for attempt in attempts:
            self._sending.add(attempt)
            attempt.add_done_callback(self._sent)
        if wait:
            await asyncio.gather(*attempts, return_exceptions=True)
        return len(claimed)

    def _sent(self, attempt: asyncio.Task[None]) -> None:
        self._sending.discard(attempt)
        if not attempt.cancelled() and attempt.exception() is not None:
            log.warning("webhook_settle_failed", error_type=type(attempt.exception()).__name__)

    async def _attempt(
        self, delivery: WebhookDelivery, hook: Webhook, event: OutboxEvent, until: datetime
    ) -> None:
        status, error = await self._send(hook, event)
        attempts = delivery.attempts + 1
        finished = datetime.now(UTC)
        if status is not None and 200 <= status < 300:
            values: dict[str, object] = {
                "status": "delivered",
                "delivered_at": finished,
                "last_error": None,
            }
        elif attempts >= self.max_attempts:
            values = {"status": "dead", "last_error": error}
            log.warning("webhook_dead", delivery_id=delivery.id, event_type=event.type)
        else:
            wait = min(self.backoff_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
            values = {"next_attempt_at": finished + timedelta(seconds=wait), "last_error": error}
        async with self.session_factory() as session:
            await WebhookRepository.from_session(session).settle(
                delivery.id, until, attempts=attempts, last_status=status, **values
            )
            await session.commit()

    async def _send(self, hook: Webhook, event: OutboxEvent) -> tuple[int | None, str | None]:
        if not still_allowed(hook.url, self.allowed_hosts):
            log.warning("webhook_host_not_allowed", webhook_id=hook.id, event_type=event.type)
            return None, NOT_ALLOWED
        body = body_of(event)
        headers = {
            "Content-Type": "application/json",
            # The receiver's answer is never read: nothing of it is decompressed either.
            "Accept-Encoding": "identity",
            "Hedui-Event-Id": event.id,
            "Hedui-Event-Type": event.type,
            "Hedui-Signature": sign(hook.secret, int(time.time()), body),
        }
        try:
            # The whole attempt within the timeout, however the receiver trickles; only its
            # status line and headers are read, never its body (a receiver answering
            # megabytes, or never ending, costs nothing).
            async with (
                asyncio.timeout(self.timeout_s),
                self.client.stream(
                    "POST", hook.url, content=body, headers=headers, timeout=self.timeout_s
                ) as response,
            ):
                status = response.status_code
        except TimeoutError:
            return None, f"no answer within {self.timeout_s:g} s"
        except Exception as error:
            # Whatever sending to this receiver raised (a transport error, a URL the client
            # will not send to) is a failed attempt of this delivery alone: the others of
            # the pass are settled as they went.
            return None, type(error).__name__
        if 200 <= status < 300:
            return status, None
        return status, f"HTTP {status}"
