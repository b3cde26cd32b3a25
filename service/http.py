"""The one outbound HTTP client per process.

httpx's API on aiohttp's connection pool: under heavy fan-out httpx's own pool costs
several milliseconds of CPU per call here, aiohttp's a fraction of one (see bench/).
"""

import httpx
from httpx_aiohttp import AiohttpTransport

from service.config import Settings


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.http_max_connections,
        max_keepalive_connections=settings.http_max_connections,
    )
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits, trust_env=False),
        timeout=httpx.Timeout(settings.connector_timeout_s),
        headers={"User-Agent": "hedui/0.1"},
        follow_redirects=False,
        trust_env=False,
    )
