"""A partner agency that misbehaves in ways the sandbox cannot, served on a loopback port.

A bare ASGI app, so an answer can be streamed chunk by chunk as large as a test likes
without the server ever holding it. Each test sets `answer` to decide what comes back.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from defusedxml.ElementTree import fromstring

Body = bytes | AsyncIterator[bytes]


@dataclass
class Answer:
    status: int = 200
    body: Body = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[str, bytes], Awaitable[Answer]]
"""(path, request body) → the answer."""


async def _not_set(path: str, body: bytes) -> Answer:
    return Answer(status=404, body=b'{"code": "unset"}')


class HostilePartner:
    """ASGI app: every request is answered by `answer`; `paths` records what was asked."""

    def __init__(self) -> None:
        self.answer: Responder = _not_set
        self.paths: list[str] = []
        self.disconnected = 0
        """Answers whose receiver hung up before the whole body was sent."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.paths.append(scope["path"])
        answer = await self.answer(scope["path"], body)
        headers = [(b"content-type", answer.content_type.encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        if isinstance(answer.body, bytes):
            await send({"type": "http.response.body", "body": answer.body})
            return
        # uvicorn drops writes to a receiver that hung up; stop producing when it does.
        gone = asyncio.create_task(receive())
        try:
            async for chunk in answer.body:
                if gone.done():
                    self.disconnected += 1
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            gone.cancel()


def asked_people(body: bytes) -> list[str]:
    """ID numbers of a vehicles `<VehicleQuery>`."""
    return [str(person.get("idNumber")) for person in fromstring(body).findall("Person")]


def vehicles_result(*id_numbers: str) -> bytes:
    people = "".join(f'<Person idNumber="{id_number}"/>' for id_number in id_numbers)
    return f'<VehicleQueryResult code="0">{people}</VehicleQueryResult>'.encode()


async def streamed(chunk: bytes, total: int) -> AsyncIterator[bytes]:
    """`total` bytes made of `chunk` repeated, produced one chunk at a time."""
    for _ in range(total // len(chunk)):
        yield chunk
        await asyncio.sleep(0)
