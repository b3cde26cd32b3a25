"""The per-fetch meter counts every request a connector sends, retries included, and tells
retries apart; its client carries the connector's retry budget to the retry layer."""

import httpx
import pytest

from connectors.base import ConnectorConfig, PartnerUnavailable
from connectors.http import Retry, request
from connectors.retry_budget import RetryBudget
from service.config import Settings
from service.connector.meter import CallMeter, Stalls
from service.http import create_http_client

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
    assert [attempt.retry for attempt in meter.attempts] == [None, Retry(2, "http_5xx")]


async def test_requests_after_a_success_are_calls_not_retries() -> None:
    """A connector that asks again (a poll, a next page) makes calls, not retries."""
    async with shared(200, 200, 200) as client:
        meter = CallMeter(client)
        async with meter.client() as metered:
            for _ in range(3):
                await request(metered, CONFIG, "GET", "/poll", lambda body: body.decode())
    assert len(meter.attempts) == 3
    assert meter.retries == []


async def test_a_spent_retry_budget_surfaces_the_failure_at_once() -> None:
    """No allowance and too few calls for a share: the 503 is the answer, not retried."""
    retry_budget = RetryBudget("bank", min_retries=0)
    async with shared(503, 200) as client:
        meter = CallMeter(client, retry_budget=retry_budget)
        async with meter.client() as metered:
            with pytest.raises(PartnerUnavailable, match="HTTP 503"):
                await request(metered, CONFIG, "GET", "/ping", lambda body: body.decode())
    assert [attempt.status_code for attempt in meter.attempts] == [503]
    assert (retry_budget.calls, retry_budget.retries) == (1, 0)


async def test_the_budget_is_shared_by_the_fetches_of_one_connector() -> None:
    """Fetches draw on one budget: after the allowance is spent, later ones do not retry."""
    retry_budget = RetryBudget("bank", min_retries=3)
    error = httpx.ConnectError("refused")
    tried = []
    async with shared(*[error] * 20) as client:
        for _ in range(4):
            meter = CallMeter(client, retry_budget=retry_budget)
            async with meter.client() as metered:
                with pytest.raises(PartnerUnavailable, match="transport error"):
                    await request(metered, CONFIG, "GET", "/ping", lambda body: body.decode())
            tried.append(len(meter.attempts))
            assert {a.retry.reason for a in meter.retries if a.retry} <= {"transport_error"}
    assert tried == [3, 2, 1, 1]
    assert retry_budget.retries == 3


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


async def test_a_cookie_a_partner_sets_is_never_sent_back() -> None:
    """Partners are APIs: neither the fetch's client nor the shared one keeps a cookie."""
    sent: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, text="ok", headers={"Set-Cookie": "session=abc; Path=/"})

    settings = Settings(partner_base_url="http://partner.test")
    async with create_http_client(settings) as client:
        client._transport = httpx.MockTransport(handle)
        for _ in range(2):
            meter = CallMeter(client)
            async with meter.client() as metered:
                for _ in range(2):
                    await request(metered, CONFIG, "GET", "/ping", lambda body: body.decode())
    assert sent == [None] * 4
    assert not client.cookies


class TestStalls:
    """How long a fetch stood still for its turns: what is not the partner's latency."""

    @pytest.fixture
    def clock(self, monkeypatch: pytest.MonkeyPatch) -> list[float]:
        now = [0.0]
        monkeypatch.setattr("service.connector.meter.time.perf_counter", lambda: now[0])
        return now

    def test_requests_waiting_side_by_side_stall_the_fetch_once(self, clock: list[float]) -> None:
        stalls = Stalls()
        stalls.change(waiting=1)
        stalls.change(waiting=1)  # two requests of the fetch wait together
        clock[0] = 0.4
        stalls.change(waiting=-1, in_flight=1)  # one has its turn: the fetch moves
        clock[0] = 0.6
        stalls.change(waiting=-1, in_flight=1)
        assert stalls.total_s == pytest.approx(0.4)

    def test_a_wait_while_another_request_is_with_the_partner_is_no_stall(
        self, clock: list[float]
    ) -> None:
        stalls = Stalls()
        stalls.change(waiting=1)
        stalls.change(waiting=-1, in_flight=1)
        stalls.change(waiting=1)  # the second waits while the first is answered
        clock[0] = 0.15
        stalls.change(in_flight=-1)  # the first is answered: now the fetch stands still
        clock[0] = 0.5
        stalls.change(waiting=-1, in_flight=1)
        clock[0] = 0.65
        stalls.change(in_flight=-1)
        assert stalls.total_s == pytest.approx(0.35)
