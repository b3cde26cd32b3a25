"""A case-management system's webhook endpoint, served by a test over real HTTP."""

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.webhook.signature import verify
from tests.conftest import serving


@dataclass
class Receiver:
    """Receives the events signed with `secret`: fails the first `failures` attempts of each
    event with 503 (all of them when None), then accepts it with 204. An event whose
    signature does not verify is counted in `bad_signatures` and refused with 401."""

    secret: str
    failures: int | None = 0
    attempts: Counter[str] = field(default_factory=Counter)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    bad_signatures: int = 0

    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        if not verify(self.secret, request.headers["Hedui-Signature"], body, now=int(time.time())):
            self.bad_signatures += 1
            return Response(status_code=401)
        event = json.loads(body)
        assert event["id"] == request.headers["Hedui-Event-Id"]
        self.attempts[event["id"]] += 1
        if self.failures is None or self.attempts[event["id"]] <= self.failures:
            return Response(status_code=503)
        self.bodies.append(body)
        self.accepted.append(event)
        return Response(status_code=204)

    def of(self, event_type: str) -> list[dict[str, Any]]:
        """The accepted events of `event_type`."""
        return [event for event in self.accepted if event["type"] == event_type]


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    """Serve `receiver` on a loopback port; yield the URL to subscribe (`…/events`)."""
    app = Starlette(routes=[Route("/events", receiver.__call__, methods=["POST"])])
    async with serving(app) as base_url:
        yield f"{base_url}/events"
