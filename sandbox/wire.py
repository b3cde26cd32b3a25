"""Small helpers every agency shares: JSON bytes in and out, and how an agency fails.

Handlers build their bodies by hand and return plain `Response`s: FastAPI's response
models and encoders would cost more than the whole lookup on the benchmark's hot path.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class WireFormat:
    """How one agency dresses its answers, so that faults fail in that agency's own way."""

    media_type: str
    error_body: Callable[[int, str], bytes]
    """Builds the agency's error body from an HTTP status and a message."""
    garbage: bytes
    """A `200` body that looks like the agency's format but does not parse in it."""

    def error(
        self, status: int, message: str | None = None, *, retry_after: int | None = None
    ) -> Response:
        """An error answer in this agency's shape; the message never carries personal data."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        body = self.error_body(status, message or HTTPStatus(status).phrase.lower())
        return Response(body, status_code=status, media_type=self.media_type, headers=headers)

    def garbage_response(self) -> Response:
        return Response(self.garbage, status_code=200, media_type=self.media_type)


def dump_json(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(payload: object, status: int = 200) -> Response:
    return Response(dump_json(payload), status_code=status, media_type="application/json")


async def read_json(request: Request) -> Any:
    """The parsed JSON body, or None when it is missing or malformed (both are a 400)."""
    try:
        return json.loads(await request.body())
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None


def media_type(request: Request) -> str:
    """The request's media type without parameters such as `; charset=utf-8`."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def string_list(value: object) -> list[str] | None:
    """`value` when it is a list of strings, else None: the usual shape of an ID list."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None
