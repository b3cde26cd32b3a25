"""`hedui serve`'s protocol writes an answer of declared length in one write, its head with
its body; anything else as uvicorn writes it. Over real HTTP, a raw socket as the caller,
the server's writes counted at its transport."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from service.server import TimedHeadersProtocol
from tests.conftest import _free_port

WRITES: list[bytes] = []
"""Every write the server made, in order (one test at a time)."""


class _Counted:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CountedWrites(TimedHeadersProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Counted(transport))  # type: ignore[arg-type]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`/json`: a body of declared length; `/stream`: two chunks, no length; `/fail`:
    a start of declared length, then an error before the body."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})
        return
    body = b'{"answer": 42}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/fail":
        raise RuntimeError("failed after starting its answer")
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
async def address() -> AsyncIterator[tuple[str, int]]:
    port = _free_port()
    config = uvicorn.Config(
        app, port=port, lifespan="off", log_level="critical", http=CountedWrites
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    yield "127.0.0.1", port
    server.should_exit = True
    await serving


async def _exchange(address: tuple[str, int], *requests: bytes) -> tuple[list[bytes], bytes]:
    """Send each request on one connection, read each answer (to its end, or until the
    server closes); the server's writes and everything read."""
    WRITES.clear()
    reader, writer = await asyncio.open_connection(*address)
    read = b""
    try:
        for request in requests:
            writer.write(request)
            await writer.drain()
            read += await _answer(reader, bodiless=request.startswith(b"HEAD "))
    finally:
        writer.close()
    return list(WRITES), read


async def _answer(reader: asyncio.StreamReader, *, bodiless: bool) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lowered = head.lower()
    if bodiless:
        return head
    if b"content-length: " in lowered:
        length = int(lowered.split(b"content-length: ")[1].split(b"\r\n")[0])
        return head + await asyncio.wait_for(reader.readexactly(length), 5)
    return head + await asyncio.wait_for(reader.read(), 5)


def _get(path: str, *, method: str = "GET", close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n".encode() + connection + b"\r\n"


async def test_an_answer_of_declared_length_is_one_write(address: tuple[str, int]) -> None:
    writes, read = await _exchange(address, _get("/json"), _get("/json"))

    # Two answers on one kept-alive connection, each in a single write.
    assert len(writes) == 2
    for write in writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        assert write.endswith(b'\r\n\r\n{"answer": 42}')
    assert read == b"".join(writes)


async def test_a_connection_closed_after_the_answer_still_gets_all_of_it(
    address: tuple[str, int],
) -> None:
    writes, read = await _exchange(address, _get("/json", close=True))

    assert len(writes) == 1
    assert b"connection: close\r\n" in writes[0].lower()
    assert read.endswith(b'{"answer": 42}')


async def test_a_streamed_answer_starts_before_its_first_chunk(
    address: tuple[str, int],
) -> None:
    writes, read = await _exchange(address, _get("/stream", close=True))

    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")  # the head alone
    assert b"transfer-encoding: chunked" in writes[0].lower()
    assert read.endswith(b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")


async def test_a_head_request_gets_its_head(address: tuple[str, int]) -> None:
    writes, read = await _exchange(address, _get("/json", method="HEAD"), _get("/json"))

    # HEAD: no body ever follows, so the head is not held back for one.
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")
    assert read.endswith(b'{"answer": 42}')  # and the connection serves on


async def test_an_app_failing_after_starting_its_answer_sends_500_not_half_of_it(
    address: tuple[str, int],
) -> None:
    writes, read = await _exchange(address, _get("/fail"))

    assert read.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"application/json" not in read  # nothing of the held-back 200 went out
    assert len(writes) == 1
