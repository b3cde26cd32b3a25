"""The process-wide partner client (httpx's API on aiohttp's pool) against a partner whose
answers are not readable HTTP: each is the partner's transport failure, retried within the
budget and counted against it, never a bug of the connector's ("connector failed")."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from connectors.base import ConnectorConfig, PartnerUnavailable
from connectors.http import PartnerClient, request
from service.config import Settings
from service.http import create_http_client
from tests.loopback import loopback_server

BROKEN = {
    "a negative length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    "two lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "no status line": b"hello there\r\n\r\n",
    "a length and chunks": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    ),
    "a header of 200 KB": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n{}",
}


@asynccontextmanager
async def partner(answer: bytes) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback partner that answers every request with `answer` and closes."""
    asked: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        asked.append(1)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with loopback_server(serve) as url:
        yield url, asked


@pytest.mark.parametrize("answer", BROKEN.values(), ids=BROKEN.keys())
async def test_an_answer_that_is_not_http_is_the_partner_s_transport_failure(
    answer: bytes,
) -> None:
    async with partner(answer) as (url, asked), create_http_client(Settings()) as shared:
        client = PartnerClient(transport=shared._transport)
        config = ConnectorConfig(base_url=url, max_attempts=2)
        with pytest.raises(PartnerUnavailable) as failed:
            await request(client, config, "GET", "/records", lambda body: body)
        await client.aclose()

    assert failed.value.reason == "transport_error"
    assert len(asked) == 2  # retried, as any transport failure
    assert "hello" not in str(failed.value)  # nothing of the answer quoted
