"""Per-call accounting where requests are made: an httpx transport that counts.

Each fetch gets its own light client whose transport records every HTTP request the
connector sends through it (attempts, retries and polls included) and hands it to the
process-wide client. The counts come back from the call that made them: no context
variable that a plugin's own task or client could bypass.
"""

import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class Attempt:
    latency_ms: float
    status_code: int | None
    """None when the request failed without an answer (see `error_type`)."""
    error_type: str | None = None


class CallMeter(httpx.AsyncBaseTransport):
    """Counts the requests of one fetch, then passes them to the shared client."""

    def __init__(self, shared: httpx.AsyncClient) -> None:
        self.shared = shared
        self.attempts: list[Attempt] = []

    def client(self) -> httpx.AsyncClient:
        """A client for one fetch: the shared one's settings, counted by this meter."""
        return httpx.AsyncClient(
            transport=self,
            headers=self.shared.headers,
            timeout=self.shared.timeout,
            follow_redirects=False,
            trust_env=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.shared.send(request, stream=True, follow_redirects=False)
        except Exception as error:
            self.attempts.append(Attempt(_ms(started), None, type(error).__name__))
            raise
        self.attempts.append(Attempt(_ms(started), response.status_code))
        return response

    async def aclose(self) -> None:
        """The shared client's pool outlives every fetch."""


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
