"""The partner transport hands httpx the headers httpx itself would make of aiohttp's, and
the errors httpx's own transport would raise for the same failures."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from service.http import PartnerTransport, _headers
from tests.loopback import closed_port, loopback_server

RAWS = [
    [],
    [(b"Content-Type", b"application/json"), (b"Content-Length", b"42")],
    [(b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"X-Caf\xc3\xa9", b"caf\xc3\xa9")],
    [(b"Content-Encoding", b"gzip"), (b"X-Latin", b"\xe9t\xe9")],
]


@pytest.mark.parametrize("raw", RAWS)
def test_headers_are_httpx_s_own(raw: list[tuple[bytes, bytes]]) -> None:
    ours, theirs = _headers(raw), httpx.Headers(raw)
    assert ours._list == theirs._list
    assert ours.encoding == theirs.encoding
    assert ours.multi_items() == theirs.multi_items()
    assert httpx.Response(200, headers=ours).headers == theirs


@contextlib.asynccontextmanager
async def _partner(answer: bytes | None, *, hold: bool = False) -> AsyncIterator[str]:
    """A partner on a port of its own that reads the request, then writes `answer` (None:
    nothing) and closes the connection, or, `hold`, keeps it open saying nothing."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if hold:
            await reader.read()  # until the client gives up and closes
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    async with loopback_server(serve) as base_url:
        yield f"{base_url}/api"


async def _ask(url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=PartnerTransport(), timeout=0.5) as client:
        response = await client.get(url)
        await response.aread()
        return response


async def test_a_refused_connection_is_a_connect_error_not_a_timeout() -> None:
    """httpx-aiohttp's own map made it `ConnectTimeout`: "no answer within 5 s", 2 ms after
    the partner refused the connection."""
    with pytest.raises(httpx.ConnectError):
        await _ask(f"http://127.0.0.1:{closed_port()}/api")


async def test_a_partner_closing_without_an_answer_is_a_protocol_error() -> None:
    async with _partner(None) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            await _ask(url)


async def test_a_body_cut_short_is_a_read_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{"
    async with _partner(cut) as url:
        with pytest.raises(httpx.ReadError):
            await _ask(url)


async def test_a_partner_saying_nothing_is_a_read_timeout() -> None:
    async with _partner(None, hold=True) as url:
        with pytest.raises(httpx.ReadTimeout):
            await _ask(url)


async def test_an_answer_that_is_not_http_is_a_protocol_error() -> None:
    async with _partner(b"SSH-2.0-OpenSSH_9.2\r\n\r\n") as url:
        with pytest.raises(httpx.RemoteProtocolError):
            await _ask(url)
