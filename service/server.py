"""How `hedui serve` runs uvicorn: timeouts against callers that hold connections.

uvicorn closes a connection idle between requests after its keep-alive timeout, but has no
timeout for a request's headers: a caller that connects and sends nothing, or sends its
headers a byte at a time (slowloris), holds a connection for as long as it likes. Here the
headers of every request must be in within `header_timeout_s` of the connection opening
(or of the request's first byte, on a kept-alive connection), or the connection is closed.
The body's own timeout is the request guard's (`service/guard.py`, 408).

Nor does uvicorn bound a request's headers in size: a caller could send megabytes of one
header, or a hundred thousand of them, and the parser would keep them all. Here a request
head over `MAX_HEAD_BYTES`, or with more than `MAX_HEADERS` header lines, is answered
`431` problem+json and its connection closed.

A request the HTTP parser cannot read at all (a garbled request line, a bad header line,
a chunk size that is not hex) is answered `400` problem+json, as every other refusal is,
not with uvicorn's plain-text line.

And an answer of declared length goes out in one write, its head with its body: uvicorn
writes the head as the app starts the answer and the body as it sends it, two system
calls and two segments, the first of which wakes the caller to wait for the second
(`_one_write`).
"""

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from service.config import get_settings
from service.errors import PROBLEM_BASE

MAX_HEAD_BYTES = 64 * 1024
"""The most a request line and its headers may take (nginx's is 32 KiB, Node's 16)."""
MAX_HEADERS = 100
"""The most header lines a request may have."""

_TOO_LARGE = json.dumps(
    {
        "type": PROBLEM_BASE + "headers-too-large",
        "title": "Request header fields too large",
        "status": 431,
        "detail": f"A request's line and headers may take {MAX_HEAD_BYTES} bytes and "
        f"{MAX_HEADERS} header lines at most",
    }
).encode()

_MALFORMED = json.dumps(
    {
        "type": PROBLEM_BASE + "malformed-request",
        "title": "Malformed HTTP request",
        "status": 400,
        "detail": "The request is not well-formed HTTP/1.1 (its request line, a header line "
        "or its chunked framing); the connection was closed",
    }
).encode()

KEEP_ALIVE_S = 5
"""Idle time between two requests on one connection (uvicorn's default, made explicit)."""


class TimedHeadersProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's headers
    (`HEDUI_HEADER_TIMEOUT_S`, read from the environment by every process, so that
    `hedui serve --workers N` passes it on without pickling anything)."""

    header_timeout_s: float | None = None
    """None: the setting's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_due: asyncio.TimerHandle | None = None
        self._timeout_s = self.header_timeout_s or get_settings().header_timeout_s
        self._head_open = False
        """A request has begun and its headers are not all in."""
        self._head_begun_now = False
        """It began in the bytes being read (which may hold the previous request's body)."""
        self._head_bytes = 0
        """Bytes read since the head began (a bound on what the parser buffers)."""
        self._head_parsed = 0
        """Bytes of the head the parser has handed over: the URL and each header line."""
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered 431 and closing: nothing more is read
        self._head_begun_now = False
        super().data_received(data)
        # Bytes read while a head is still incomplete are head bytes; those of the read in
        # which it began are left out (they may be the body before it). This bounds what the
        # parser holds of a header not yet complete; the parsed parts are counted exactly
        # (`_parsed`).
        if self._head_open and not self._head_begun_now and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()

    def on_url(self, url: bytes) -> None:
        self._parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            self._refused = True
            raise ValueError("too many header lines")  # stops the parser: send_400_response
        self._parsed(len(name) + len(value) + 4)  # "name: value\r\n"
        super().on_header(name, value)

    def _parsed(self, size: int) -> None:
        """The exact count: a head that came in one read, however large, is refused too."""
        self._head_parsed += size
        if self._head_parsed > MAX_HEAD_BYTES:
            self._refused = True
            raise ValueError("request head too large")  # stops the parser: send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._refused:
            self._refuse_head()  # the parser stopped for us, not for a malformed request
        else:
            self._refused = True
            self._headers_in()
            self._answer_and_close(b"400 Bad Request", _MALFORMED)

    def _refuse_head(self) -> None:
        self._refused = True
        self._headers_in()
        self._answer_and_close(b"431 Request Header Fields Too Large", _TOO_LARGE)

    def _answer_and_close(self, status: bytes, problem: bytes) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(problem)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + problem
        )
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._expect_headers()
        self._head_open, self._head_begun_now, self._head_bytes = True, True, 0
        self._head_parsed = 0

    def on_headers_complete(self) -> None:
        self._headers_in()
        self._head_open = False
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_in()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # Before the task starts: the app is handed `cycle.send` when it first runs.
        cycle.send = _one_write(cycle)  # type: ignore[method-assign,assignment]
        super()._start_asgi_task(cycle, app)

    def _expect_headers(self) -> None:
        self._headers_in()
        self._headers_due = self.loop.call_later(self._timeout_s, self._headers_late)

    def _headers_in(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if not self.transport.is_closing():
            self.transport.close()


class _Written:
    """What uvicorn writes while an answer's head and first body part are sent together:
    kept, to go out in one write; a close asked for meanwhile comes after it."""

    __slots__ = ("closing", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


def _one_write(
    cycle: RequestResponseCycle,
) -> Callable[[ASGISendEvent], Coroutine[Any, Any, None]]:
    """`cycle.send`, holding back an answer's start (its status and headers) until its
    first body part, when the answer declares its length (so a body follows at once) and
    is not to a HEAD: both are then written in one call. A streamed answer (chunked, an
    event stream) starts at once, as uvicorn starts it. Should the app fail after
    starting an answer that was held back, nothing of it has been sent, and uvicorn
    answers 500 instead of closing a half-sent answer."""
    send = cycle.send
    held: list[ASGISendEvent] = []

    async def send_in_one_write(message: ASGISendEvent) -> None:
        kind = message["type"]
        if kind == "http.response.start" and _length_declared(message, cycle):
            held[:] = [message]  # uvicorn's own 500, should the app fail, replaces it
            return
        if not held or kind != "http.response.body":
            await send(message)
            return
        start = held.pop()
        transport = cycle.transport
        written = _Written()
        cycle.transport = written  # type: ignore[assignment]
        try:
            await send(start)
            await send(message)
        finally:
            cycle.transport = transport
            if written.parts:
                transport.write(b"".join(written.parts))
            if written.closing:
                transport.close()

    return send_in_one_write


def _length_declared(message: ASGISendEvent, cycle: RequestResponseCycle) -> bool:
    if cycle.response_started or cycle.scope["method"] == "HEAD":
        return False
    headers = cast(Iterable[tuple[bytes, bytes]], message.get("headers", ()))
    return any(name.lower() == b"content-length" for name, _ in headers)
