"""The one outbound HTTP client per process.

httpx's API on aiohttp's connection pool: under heavy fan-out httpx's own pool costs
several milliseconds of CPU per call here, aiohttp's a fraction of one (see bench/).
Neither layer keeps cookies: partners are APIs, and a jar costs every request a lookup.
"""

import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from multidict import CIMultiDict
from yarl import URL

from connectors.http import USER_AGENT, NoCookies, WholeBody, headers_of
from service.config import Settings

_CHUNK_BYTES = 16 * 1024


class PartnerTransport(AiohttpTransport):
    """aiohttp's pool, with a session that keeps no cookies; requests passed on without
    rebuilding what does not change between them (the URL, the timeouts), answers whose
    body can be read in one call."""

    def get_client(self) -> aiohttp.ClientSession:
        # Called once, on the first request (inside the event loop, as aiohttp wants).
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.proxy is not None or "sni_hostname" in request.extensions:
            with _partner_errors():
                return await super().handle_async_request(request)
        try:
            content = request.content
        except httpx.RequestNotRead:  # a streamed body: httpx-aiohttp's own way
            with _partner_errors():
                return await super().handle_async_request(request)
        client = self.client
        if not isinstance(client, aiohttp.ClientSession):
            client = self.client = self.get_client()
        timeout = request.extensions.get("timeout") or {}
        with _partner_errors():
            answer = await client.request(
                request.method,
                _yarl(str(request.url)),
                headers=CIMultiDict(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in request.headers.raw
                ),
                data=content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_client_timeout(
                    timeout.get("connect"), timeout.get("read"), timeout.get("pool")
                ),
            ).__aenter__()
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        return httpx.Response(
            status_code=answer.status,
            headers=_headers(answer.raw_headers),
            stream=_Body(answer),
            request=request,
            extensions=extensions,
        )


class _Body(WholeBody):
    """aiohttp's answer as httpx's stream; whole in one read when its length is declared."""

    __slots__ = ("_answer",)

    def __init__(self, answer: aiohttp.ClientResponse) -> None:
        self._answer = answer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _partner_errors():
            async for chunk in self._answer.content.iter_chunked(_CHUNK_BYTES):
                yield chunk

    async def read_whole(self) -> bytes | None:
        with _partner_errors():
            return await self._answer.read()

    async def aclose(self) -> None:
        with _partner_errors():
            await self._answer.__aexit__(None, None, None)


_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    # Refused, unreachable, no such host, a TLS failure: no connection was made.
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    # The partner closed the connection without an answer: what httpx's own transport says.
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidUrlClientError, httpx.UnsupportedProtocol),
    # Reset, broken pipe, any other socket error once connected.
    (aiohttp.ClientConnectionError, httpx.ReadError),
)
"""aiohttp's errors and the httpx error each is, the most specific first. httpx-aiohttp's
own map makes every connection error (refused, reset, closed without an answer) a
`ConnectTimeout`, which a connector reports as "no answer within N s"."""


@contextmanager
def _partner_errors() -> Iterator[None]:
    """aiohttp's errors as the httpx errors httpx's own transport raises for the same
    failure (`_ERRORS`), and an answer aiohttp cannot read as HTTP (a negative or doubled
    `Content-Length`, headers past its limits, no status line: `ClientResponseError`) as a
    `RemoteProtocolError`: the partner's failure, retried and counted against it, not a bug
    of the connector's. Nothing of the answer is quoted."""
    try:
        yield
    except aiohttp.ClientResponseError:
        raise httpx.RemoteProtocolError("the answer is not readable HTTP") from None
    except aiohttp.ClientError as error:
        for aiohttp_error, httpx_error in _ERRORS:
            if isinstance(error, aiohttp_error):
                raise httpx_error(str(error)) from error
        raise httpx.TransportError(str(error)) from error


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> httpx.Headers:
    """`httpx.Headers(raw)` of aiohttp's raw headers, which are bytes already: without
    httpx's checking and normalising of each name and value again (1.5 µs an answer)."""
    return headers_of([(name, name.lower(), value) for name, value in raw])


@lru_cache(maxsize=1024)
def _yarl(url: str) -> URL:
    """A partner URL parsed once by yarl too: connectors ask the same few endpoints."""
    return URL(url, encoded=True)


@lru_cache(maxsize=64)
def _client_timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """The partners' TLS context (the system's CA bundle, certificates verified), built once
    a process: loading the bundle costs 30-45 ms of CPU, and a command, a test or a
    service that builds its runtime again would pay it each time. A context holds no
    connection's state and serves any number of pools."""
    return httpx.create_ssl_context(trust_env=False)


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.http_max_connections,
        max_keepalive_connections=settings.http_max_connections,
    )
    client = httpx.AsyncClient(
        transport=PartnerTransport(verify=_tls(), limits=limits, trust_env=False),
        timeout=httpx.Timeout(settings.connector_timeout_s),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )
    client._cookies = NoCookies()  # httpx has no switch for its jar
    return client
