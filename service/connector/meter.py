"""Per-call accounting where requests are made: an httpx transport that counts.

Each fetch gets its own light client whose transport records every HTTP request the
connector sends through it (attempts, retries and polls included) and hands it to the
process-wide client. The counts come back from the call that made them: no context
variable that a plugin's own task or client could bypass. A retry is told apart from a
first request or a poll by the `Retry` extension the retry layer puts on it; the fetch's
client carries its connector's retry budget to that layer.
"""

import time
from dataclasses import dataclass

import httpx

from connectors.http import RETRY_EXTENSION, PartnerClient, Retry
from connectors.retry_budget import RetryBudget


@dataclass(frozen=True, slots=True)
class Attempt:
    latency_ms: float
    status_code: int | None
    """None when the request failed without an answer (see `error_type`)."""
    error_type: str | None = None
    retry: Retry | None = None
    """Set when the request was a retry: its attempt number and the failure that caused it."""


class CallMeter(httpx.AsyncBaseTransport):
    """Counts the requests of one fetch, then passes them to the shared client."""

    def __init__(
        self, shared: httpx.AsyncClient, *, retry_budget: RetryBudget | None = None
    ) -> None:
        self.shared = shared
        self.retry_budget = retry_budget
        self.attempts: list[Attempt] = []

    @property
    def retries(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.retry is not None]

    def client(self) -> PartnerClient:
        """A client for one fetch: the shared one's settings, counted by this meter."""
        return PartnerClient(
            retry_budget=self.retry_budget,
            transport=self,
            headers=self.shared.headers,
            timeout=self.shared.timeout,
            follow_redirects=False,
            trust_env=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retry = request.extensions.get(RETRY_EXTENSION)
        retry = retry if isinstance(retry, Retry) else None
        started = time.perf_counter()
        try:
            response = await self.shared.send(request, stream=True, follow_redirects=False)
        except Exception as error:
            self.attempts.append(Attempt(_ms(started), None, type(error).__name__, retry))
            raise
        self.attempts.append(Attempt(_ms(started), response.status_code, retry=retry))
        return response

    async def aclose(self) -> None:
        """The shared client's pool outlives every fetch."""


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
