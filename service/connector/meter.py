"""Per-call accounting where requests are made: an httpx transport that counts.

Each fetch gets its own light client whose transport records every HTTP request the
connector sends through it (attempts, retries and polls included) and hands it to the
process-wide client. The counts come back from the call that made them: no context
variable that a plugin's own task or client could bypass. A retry is told apart from a
first request or a poll by the `Retry` extension the retry layer puts on it; the fetch's
client carries its connector's retry budget to that layer.

The same transport makes every request wait for its turn under the partner's agreed
limits (`service/connector/throttle.py`) and hold a concurrency slot until its answer has
been read, so no connector can reach its partner around them.
"""

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from connectors.http import RETRY_EXTENSION, PartnerClient, Retry, WholeBody
from connectors.retry_budget import RetryBudget
from schemas.evidence import RequestContext
from service.connector.throttle import Limits, Permit, Starved, Throttle


@dataclass(frozen=True, slots=True)
class Attempt:
    latency_ms: float
    status_code: int | None
    """None when the request failed without an answer (see `error_type`)."""
    error_type: str | None = None
    retry: Retry | None = None
    """Set when the request was a retry: its attempt number and the failure that caused it."""


@dataclass(frozen=True, slots=True)
class Turns:
    """Where a fetch's requests take their turns: the throttle, the partner's limits and
    the fetch's deadline (on the loop's clock)."""

    throttle: Throttle
    connector: str
    limits: Limits
    deadline: float


class Stalls:
    """How long a fetch stood still for its turns: the wall time during which a request of
    it waited for a turn and none of its requests was with the partner. Not the sum of the
    waits: requests of one fetch that wait side by side stall it once."""

    __slots__ = ("_since", "in_flight", "total_s", "waiting")

    def __init__(self) -> None:
        self.waiting = 0
        self.in_flight = 0
        self.total_s = 0.0
        self._since: float | None = None

    def change(self, waiting: int = 0, in_flight: int = 0) -> None:
        self.waiting += waiting
        self.in_flight += in_flight
        now = time.perf_counter()
        stalled = self.waiting > 0 and self.in_flight == 0
        if stalled and self._since is None:
            self._since = now
        elif not stalled and self._since is not None:
            self.total_s += now - self._since
            self._since = None


class PartnerPaused(Exception):
    """An operator paused the partner while this fetch was under way: its next request
    (a poll, a retry, one that waited for its turn) is not sent."""


class CallMeter(httpx.AsyncBaseTransport):
    """Counts the requests of one fetch, then passes them to the shared client (each in its
    turn, when `turns` is given; none once `paused` says the partner is paused)."""

    def __init__(
        self,
        shared: httpx.AsyncClient,
        turns: Turns | None = None,
        *,
        retry_budget: RetryBudget | None = None,
        paused: Callable[[], bool] | None = None,
    ) -> None:
        self.paused = paused
        self.stopped = False
        """A request was not sent because the partner was paused meanwhile."""
        self.shared = shared
        self.transport = shared._transport  # its pool, without the client layer
        self.turns = turns
        self.retry_budget = retry_budget
        self.attempts: list[Attempt] = []
        self.starved = False
        """A request found no turn within the budget (or the budget ended while it waited):
        hedui's own congestion, whatever error the connector made of it."""
        self.stalls = Stalls()

    @property
    def retries(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.retry is not None]

    def client(self, context: RequestContext | None = None) -> PartnerClient:
        """A client for one fetch: the shared one's settings, counted by this meter; every
        request it sends about the household carries `context` (its consent headers)."""
        return _template(self.shared).fork(
            transport=self, retry_budget=self.retry_budget, context=context
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retry = request.extensions.get(RETRY_EXTENSION)
        retry = retry if isinstance(retry, Retry) else None
        self._unless_paused()
        permit = await self._turn() if self.turns is not None else None
        if permit is not None and self.paused is not None and self.paused():
            await self._release(permit)  # paused while this request waited for its turn
            self._unless_paused()
        started = time.perf_counter()
        try:
            # Straight to the shared pool: the fetch's own client has built the request
            # (timeouts included), and a second client layer would only repeat its work.
            response = await self.transport.handle_async_request(request)
        except BaseException as error:
            if permit is not None:
                await self._release(permit)
            if isinstance(error, Exception):
                self.attempts.append(Attempt(_ms(started), None, type(error).__name__, retry))
            raise
        self.attempts.append(Attempt(_ms(started), response.status_code, retry=retry))
        if permit is not None:
            # The slot is held until the answer has been read (or abandoned).
            response.stream = _Releasing(response.stream, permit, self._release)
        return response

    def _unless_paused(self) -> None:
        if self.paused is not None and self.paused():
            self.stopped = True
            raise PartnerPaused("paused by operator")

    async def _release(self, permit: Permit) -> None:
        assert self.turns is not None  # noqa: S101 - a permit comes from the turns
        self.stalls.change(in_flight=-1)
        await self.turns.throttle.release(permit)

    async def _turn(self) -> Permit:
        assert self.turns is not None  # noqa: S101 - only called with turns
        turns = self.turns
        self.stalls.change(waiting=1)
        try:
            permit = await turns.throttle.acquire(turns.connector, turns.limits, turns.deadline)
        except (Starved, asyncio.CancelledError):
            # Given up, or the fetch's budget ended while this request waited for its turn.
            self.stalls.change(waiting=-1)
            self.starved = True
            raise
        except BaseException:
            self.stalls.change(waiting=-1)
            raise
        self.stalls.change(waiting=-1, in_flight=1)
        return permit

    async def aclose(self) -> None:
        """The shared client's pool outlives every fetch."""


class _Releasing(WholeBody):
    """A response body that gives its throttle slot back once closed."""

    def __init__(
        self,
        stream: httpx.AsyncByteStream | httpx.SyncByteStream,
        permit: Permit,
        release: Callable[[Permit], Awaitable[None]],
    ) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)  # noqa: S101 - an async client's
        self.stream = stream
        self.permit: Permit | None = permit
        self.release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    async def read_whole(self) -> bytes | None:
        return await self.stream.read_whole() if isinstance(self.stream, WholeBody) else None

    async def aclose(self) -> None:
        try:
            await self.stream.aclose()
        finally:
            permit, self.permit = self.permit, None
            if permit is not None:
                await self.release(permit)


_templates: "weakref.WeakKeyDictionary[httpx.AsyncClient, PartnerClient]" = (
    weakref.WeakKeyDictionary()
)


def _template(shared: httpx.AsyncClient) -> PartnerClient:
    """The client every fetch's client is forked from: `shared`'s settings, never sent on."""
    template = _templates.get(shared)
    if template is None:
        template = _templates[shared] = PartnerClient(
            transport=shared._transport,  # replaced in every fork
            headers=shared.headers,
            timeout=shared.timeout,
            follow_redirects=False,
            trust_env=False,
        )
    return template


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
