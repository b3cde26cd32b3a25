"""A request id for every HTTP request: taken from `X-Request-ID` when the caller sent a
sane one, made up otherwise; echoed in the response, bound into every log line written
while the request is served, and recorded with each audit record."""

import re
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.identity import hides_id_number

HEADER = "x-request-id"
STATE_KEY = "request_id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ID_NUMBER_LIKE = re.compile(r"[0-9]{15}")
"""A run of 15 digits: a (15- or 18-character) ID number a caller used as its request id."""


def request_id_from(value: str | None) -> str:
    """The caller's id when it is short and plain and holds no ID number (it lands in
    logs, response headers and the audit trail), else a fresh one."""
    if (
        value is not None
        and _SANE.fullmatch(value)
        and not _ID_NUMBER_LIKE.search(value)
        and not hides_id_number(value)  # written apart: `5301A021-9800-5010-A012-...`
    ):
        return value
    return new_request_id()


def new_request_id() -> str:
    """32 hex characters, never with a run of digits a log's ID-number masking would cut
    into (about one random id in 300 has 15 digits in a row)."""
    while True:
        made = uuid.uuid4().hex
        if not _ID_NUMBER_LIKE.search(made):
            return made


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        sent = headers.get(HEADER.encode("latin-1"))
        request_id = request_id_from(sent.decode("latin-1") if sent is not None else None)
        scope.setdefault("state", {})[STATE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)
