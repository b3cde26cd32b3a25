"""The one outbound HTTP client per process.

httpx's API on aiohttp's connection pool: under heavy fan-out httpx's own pool costs
several milliseconds of CPU per call here, aiohttp's a fraction of one (see bench/).
Neither layer keeps cookies: partners are APIs, and a jar costs every request a lookup.
"""

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from connectors.http import NoCookies
from service.config import Settings


class PartnerTransport(AiohttpTransport):
    """aiohttp's pool, with a session that keeps no cookies."""

    def get_client(self) -> aiohttp.ClientSession:
        # Called once, on the first request (inside the event loop, as aiohttp wants).
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.http_max_connections,
        max_keepalive_connections=settings.http_max_connections,
    )
    client = httpx.AsyncClient(
        transport=PartnerTransport(limits=limits, trust_env=False),
        timeout=httpx.Timeout(settings.connector_timeout_s),
        headers={"User-Agent": "hedui/0.1"},
        follow_redirects=False,
        trust_env=False,
    )
    client._cookies = NoCookies()  # httpx has no switch for its jar
    return client
