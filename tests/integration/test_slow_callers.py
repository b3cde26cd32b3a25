"""Slow callers (slowloris) over real HTTP: a raw socket trickles a body, or headers, at
uvicorn serving an app behind the request guard, with tiny timeouts so the tests stay
quick. The body's timeout is the guard's (408); the headers' is `hedui serve`'s protocol."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from service.error_handlers import install_error_handlers
from service.guard import RequestGuard
from service.server import MAX_HEAD_BYTES, TimedHeadersProtocol
from tests.conftest import _free_port

TIMEOUT_S = 0.3
MIN_RATE = 1000  # bytes a second that extend the timeout by one second


async def echo(request: Request) -> Response:
    return JSONResponse({"received": len(await request.body())})


async def slow_answer(request: Request) -> Response:
    """Reads its (small) body at once, then streams an answer for longer than the body
    timeout: once the body is in, the timeout no longer applies."""
    await request.body()

    async def chunks() -> AsyncIterator[bytes]:
        await asyncio.sleep(TIMEOUT_S * 2)
        yield b"done"

    return StreamingResponse(chunks())


class QuickHeaders(TimedHeadersProtocol):
    header_timeout_s = TIMEOUT_S


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    app = FastAPI()
    app.add_api_route("/echo", echo, methods=["POST"])
    app.add_api_route("/slow", slow_answer, methods=["POST"])
    install_error_handlers(app)
    guarded = RequestGuard(
        app, max_body_bytes=1_000_000, body_timeout_s=TIMEOUT_S, body_min_rate=MIN_RATE
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(guarded, port=port, lifespan="off", log_level="warning", http=QuickHeaders)
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


async def _connect(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base_url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


def _head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def let_go(reader: asyncio.StreamReader) -> bool:
    """The server closed the connection: what is left reads to its end (an answer at most),
    or as a reset or broken pipe (when it closed with bytes of ours still unread)."""
    try:
        rest = await asyncio.wait_for(reader.read(), timeout=10)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return rest == b"" or (rest.startswith(b"HTTP/1.1 408") and reader.at_eof())


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout=10)
    return int(status_line.split()[1]), headers, body


async def test_a_stalled_body_is_answered_408_and_its_connection_closed(base_url: str) -> None:
    """A few bytes of a 1,000-byte body, then nothing: 408 at the timeout."""
    reader, writer = await _connect(base_url)
    try:
        writer.write(_head("/echo", 1000))
        for _ in range(3):  # a byte every 50 ms, then silence
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)
        status, headers, body = await _response(reader)
        assert status == 408
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        problem = json.loads(body)
        assert problem["status"] == 408
        assert "HEDUI_BODY_TIMEOUT_S" in problem["detail"]
        assert await let_go(reader)
    finally:
        writer.close()


async def test_a_body_trickled_for_ever_loses_its_connection(base_url: str) -> None:
    """A byte every 50 ms (20 a second, far below the minimum rate) for as long as the
    server listens: it stops listening. (The 408 itself may be lost: a server closing a
    connection with bytes of ours still unread resets it.)"""
    reader, writer = await _connect(base_url)
    try:
        writer.write(_head("/echo", 1000))
        for _ in range(200):  # 10 s at most: far past the timeout
            if reader.at_eof() or writer.is_closing():
                break
            try:
                writer.write(b" ")
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.05)
        assert await let_go(reader)
    finally:
        writer.close()


async def test_a_large_body_sent_at_a_steady_pace_is_read_whole(base_url: str) -> None:
    """Three chunks of 1,000 bytes 0.2 s apart: 0.4 s in all, longer than the timeout, but
    each 1,000 bytes buy another second."""
    reader, writer = await _connect(base_url)
    try:
        writer.write(_head("/echo", 3000))
        for _ in range(3):
            writer.write(b" " * 1000)
            await writer.drain()
            await asyncio.sleep(0.2)
        status, _, body = await _response(reader)
        assert (status, json.loads(body)) == (200, {"received": 3000})
    finally:
        writer.close()


async def test_once_the_body_is_in_a_slow_answer_is_not_cut_off(base_url: str) -> None:
    reader, writer = await _connect(base_url)
    try:
        writer.write(_head("/slow", 2) + b"{}")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert head.startswith(b"HTTP/1.1 200")
        # The streamed answer arrives whole (chunked), after more than the body timeout.
        await asyncio.wait_for(reader.readuntil(b"done"), timeout=10)
    finally:
        writer.close()


async def test_headers_trickled_or_never_sent_lose_the_connection(base_url: str) -> None:
    reader, writer = await _connect(base_url)
    try:
        for byte in b"POST /echo HTTP/1.1\r\nHost: te":  # a byte every 50 ms, never done
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)
            if reader.at_eof():
                break
        assert await let_go(reader)
    finally:
        writer.close()
    silent_reader, silent = await _connect(base_url)  # connects, says nothing
    try:
        assert await let_go(silent_reader)
    finally:
        silent.close()


async def test_a_prompt_caller_keeps_its_connection_for_the_next_request(base_url: str) -> None:
    """Headers within the timeout, then idle longer than it between two requests (the
    keep-alive timeout, not the header timeout, governs that): both answered."""
    reader, writer = await _connect(base_url)
    try:
        for _ in range(2):
            writer.write(_head("/echo", 2) + b"{}")
            status, _, body = await _response(reader)
            assert (status, json.loads(body)) == (200, {"received": 2})
            await asyncio.sleep(TIMEOUT_S * 2)
    finally:
        writer.close()


async def test_a_huge_header_is_431_and_the_connection_closed(base_url: str) -> None:
    reader, writer = await _connect(base_url)
    try:
        writer.write(b"POST /echo HTTP/1.1\r\nHost: test\r\nX-Junk: ")
        await writer.drain()
        await asyncio.sleep(0.05)  # read by the server: the request has begun
        writer.write(b"a" * (MAX_HEAD_BYTES + 1))  # one header over the limit, and no end
        await writer.drain()
        status, headers, body = await _response(reader)
        assert status == 431
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        assert json.loads(body)["status"] == 431
        assert await let_go(reader)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /echo HTTP/1.1\r\nHost: test\r\nX-Junk: " + b"a" * (MAX_HEAD_BYTES + 1) + b"\r\n",
        b"GET /echo HTTP/1.1\r\nHost: test\r\n"
        + b"".join(b"X-%d: " % n + b"a" * (MAX_HEAD_BYTES // 2) + b"\r\n" for n in range(2)),
        b"GET /echo?" + b"a" * (MAX_HEAD_BYTES + 1) + b" HTTP/1.1\r\nHost: test\r\n",
    ],
    ids=["one-header", "two-headers", "url"],
)
async def test_a_head_over_the_limit_sent_at_once_is_431(base_url: str, head: bytes) -> None:
    """The whole head in one write, so one read: counted as parsed, not as read."""
    reader, writer = await _connect(base_url)
    try:
        writer.write(head + b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        status, headers, body = await _response(reader)
        assert status == 431
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["type"].endswith("/headers-too-large")
    finally:
        writer.close()


async def test_too_many_header_lines_are_431(base_url: str) -> None:
    reader, writer = await _connect(base_url)
    try:
        lines = b"".join(b"X-N%d: 1\r\n" % n for n in range(150))
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: test\r\n" + lines + b"Content-Length: 0\r\n\r\n"
        )
        await writer.drain()
        status, _, body = await _response(reader)
        assert status == 431
        assert json.loads(body)["type"].endswith("/headers-too-large")
    finally:
        writer.close()


async def test_headers_within_the_limits_are_served(base_url: str) -> None:
    reader, writer = await _connect(base_url)
    try:
        lines = b"".join(b"X-N%d: %s\r\n" % (n, b"v" * 500) for n in range(90))
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: test\r\n" + lines + b"Content-Length: 2\r\n\r\n{}"
        )
        await writer.drain()
        status, _, body = await _response(reader)
        assert status == 200
        assert json.loads(body) == {"received": 2}
    finally:
        writer.close()


@pytest.mark.parametrize(
    "request_",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: test\r\nNo colon here\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["request-line", "header-line", "chunk-size"],
)
async def test_a_malformed_request_is_400_problem_json_and_the_connection_closed(
    base_url: str, request_: bytes
) -> None:
    """Not uvicorn's plain-text line: the same problem+json every other refusal is."""
    reader, writer = await _connect(base_url)
    try:
        writer.write(request_)
        await writer.drain()
        status, headers, body = await _response(reader)
        assert status == 400
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        problem = json.loads(body)
        assert problem["type"] == "/problems/malformed-request"
        assert problem["status"] == 400
        assert await reader.read() == b""  # closed, nothing more
    finally:
        writer.close()
