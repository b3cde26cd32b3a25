"""The per-fetch meter counts every request a connector sends, retries included."""

import httpx
import pytest

from connectors.base import ConnectorConfig, PartnerUnavailable
from connectors.http import request
from service.connector.meter import CallMeter

CONFIG = ConnectorConfig(base_url="http://partner.test", max_attempts=3)


def shared(*answers: int | Exception) -> httpx.AsyncClient:
    queue = list(answers)

    def handle(_: httpx.Request) -> httpx.Response:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text="ok")

    return httpx.AsyncClient(transport=httpx.MockTransport(handle), headers={"X-Shared": "1"})


async def test_retries_are_counted_with_their_status() -> None:
    async with shared(503, 200) as client:
        meter = CallMeter(client)
        async with meter.client() as metered:
            text = await request(metered, CONFIG, "GET", "/ping", lambda body: body.decode())
    assert text == "ok"
    assert [attempt.status_code for attempt in meter.attempts] == [503, 200]
    assert all(attempt.latency_ms >= 0 for attempt in meter.attempts)


async def test_transport_errors_are_counted_by_type() -> None:
    error = httpx.ConnectError("refused")
    async with shared(error, error, error) as client:
        meter = CallMeter(client)
        async with meter.client() as metered:
            with pytest.raises(PartnerUnavailable):
                await request(metered, CONFIG, "GET", "/ping", lambda body: body.decode())
    assert [a.error_type for a in meter.attempts] == ["ConnectError"] * 3


async def test_closing_a_fetch_client_leaves_the_shared_one_open() -> None:
    async with shared(200, 200) as client:
        meter = CallMeter(client)
        async with meter.client() as metered:
            assert metered.headers["X-Shared"] == "1"
            await metered.get("http://partner.test/a")
        assert not client.is_closed
        assert (await client.get("http://partner.test/b")).status_code == 200
