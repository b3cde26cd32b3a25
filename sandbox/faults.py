"""Injected faults: per-source state, and the one gate every agency route passes through.

The gate is ASGI middleware in front of the whole sandbox, so a fault reaches every call
under an agency's root (queries, polls, health checks, even unknown paths) and fails in
that agency's own wire format. Control endpoints (`/people`, `/faults`) are never faulted.
"""

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.consent import ConsentLog
from sandbox.wire import WireFormat

logger = logging.getLogger(__name__)

Mode = Literal["ok", "slow", "error", "hang", "garbage", "down"]

SLOW_DEFAULT_MS = 1000
"""`slow` without a `latency_ms` still has to be slow, yet answer within a 5 s client budget."""
HANG_SECONDS = 3600.0
PROCESSING_MAX_MS = 30 * 24 * 3600 * 1000
"""A bank inquiry may take up to 30 days, as real asset verifications may."""


class FaultSetting(BaseModel):
    """One source's fault, as `PUT /faults/{source}` takes it and `GET /faults` lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "ok"
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    processing_ms: int | None = Field(
        default=None,
        ge=0,
        le=PROCESSING_MAX_MS,
        description="Bank only: how long an inquiry submitted now takes to be DONE, on the "
        "sandbox's clock; polls meanwhile answer at once with PROCESSING. Unset: the "
        "answers' own delay (a slow bank is slow to process too)",
    )

    @property
    def delay_s(self) -> float:
        """Seconds every answer waits; `slow` alone gets a default delay."""
        if self.mode == "slow" and self.latency_ms == 0:
            return SLOW_DEFAULT_MS / 1000
        return self.latency_ms / 1000

    @property
    def processing_s(self) -> float:
        """Seconds a bank inquiry submitted now processes before it is DONE."""
        if self.processing_ms is None:
            return self.delay_s
        return self.processing_ms / 1000

    @property
    def failure_rate(self) -> float:
        """Chance that a call answers 500; `error` with no rate always fails."""
        if self.mode == "error":
            return self.error_rate or 1.0
        # A flaky but otherwise healthy partner: `ok`/`slow` honour a given rate as well.
        return self.error_rate if self.mode in ("ok", "slow") else 0.0


NORMAL = FaultSetting()

WINDOW_S = 1.0
"""The window of `Traffic.max_per_second`."""


class Traffic:
    """What one agency saw of its callers, as a partner enforcing an agreed rate and
    concurrency would: every call under its root (queries, polls, health checks)."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        """Most calls being handled at once (from arrival until the answer was sent)."""
        self.max_per_second = 0
        """Most calls that arrived within any one second (a sliding window)."""
        self._recent: deque[float] = deque()

    def arrived(self, now: float) -> None:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        recent = self._recent
        recent.append(now)
        while recent[0] <= now - WINDOW_S:
            recent.popleft()
        self.max_per_second = max(self.max_per_second, len(recent))

    def answered(self) -> None:
        self.in_flight -= 1

    def summary(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "max_in_flight": self.max_in_flight,
            "max_per_second": self.max_per_second,
        }


class FaultBoard:
    """Current fault per source; everything starts healthy."""

    def __init__(self, sources: Iterable[str]) -> None:
        self.sources = tuple(sources)
        self._settings: dict[str, FaultSetting] = dict.fromkeys(self.sources, NORMAL)
        self.hanging = 0
        """Calls currently held by `hang`: lets tests prove a hang ends with its client."""
        self.queries: dict[str, int] = dict.fromkeys(self.sources, 0)
        """Household queries (POSTs) each agency received, faulted or not: lets tests prove
        that a partner was asked exactly once."""
        self.traffic: dict[str, Traffic] = {source: Traffic() for source in self.sources}
        """Every call each agency received: lets tests prove a partner's agreed rate and
        concurrency were kept."""

    def reset_traffic(self) -> None:
        self.traffic = {source: Traffic() for source in self.sources}

    def __contains__(self, source: object) -> bool:
        return source in self._settings

    def get(self, source: str) -> FaultSetting:
        return self._settings[source]

    def set(self, source: str, setting: FaultSetting) -> None:
        # A setting equal to NORMAL is stored as NORMAL itself: the gate's fast path is `is`.
        setting = NORMAL if setting == NORMAL else setting
        if setting == self._settings[source]:
            return  # nothing changed, nothing to say (a reset of healthy sources, say)
        self._settings[source] = setting
        logger.info(
            "fault on %s: mode=%s latency_ms=%d error_rate=%.2f processing_ms=%s",
            source,
            setting.mode,
            setting.latency_ms,
            setting.error_rate,
            setting.processing_ms,
        )

    def reset(self, source: str | None = None) -> None:
        for name in self.sources if source is None else (source,):
            self.set(name, NORMAL)

    def snapshot(self) -> dict[str, FaultSetting]:
        return dict(self._settings)


def _route_path(scope: Scope) -> str:
    """The path below the mount point (same rule as Starlette's routing)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if (
        root_path
        and path.startswith(root_path)
        and path[len(root_path) : len(root_path) + 1] == "/"
    ):
        return path[len(root_path) :]
    return path


class FaultGate:
    """ASGI middleware applying each source's fault before its agency sees the call."""

    def __init__(
        self,
        app: ASGIApp,
        board: FaultBoard,
        formats: Mapping[str, WireFormat],
        consent: ConsentLog | None = None,
    ) -> None:
        self.app = app
        self.board = board
        self.formats = formats
        self.consent = consent
        self.rng = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parts = _route_path(scope).split("/", 2)
        source = parts[1:2]
        traffic = self.board.traffic.get(source[0]) if source else None
        if traffic is None:
            await self._gate(scope, receive, send, source)
            return
        traffic.arrived(time.monotonic())
        try:
            if not self._consented(scope, source[0], parts):
                message = "X-Hedui-Consent-Id and X-Hedui-Purpose are required"
                await self.formats[source[0]].error(403, message)(scope, receive, send)
                return
            await self._gate(scope, receive, send, source)
        finally:
            traffic.answered()

    def _consented(self, scope: Scope, source: str, parts: list[str]) -> bool:
        """Note the consent headers of a household query; False when it must be refused."""
        if self.consent is None:
            return True
        below = "/" + (parts[2] if len(parts) > 2 else "")
        if not self.consent.is_query(source, scope["method"], below):
            return True
        return self.consent.record(source, scope["headers"])

    async def _gate(self, scope: Scope, receive: Receive, send: Send, source: list[str]) -> None:
        setting = self._setting(source[0] if source else "", scope["method"])
        if setting is NORMAL:  # the benchmark's hot path: no fault, nothing to do
            await self.app(scope, receive, send)
            return
        wire = self.formats[source[0]]
        if setting.mode == "hang":
            if await self._hang(receive):
                return  # the client gave up; there is nobody to answer
            await wire.error(504)(scope, receive, send)
            return
        if setting.delay_s:
            disconnected, receive = await self._delay(receive, setting.delay_s)
            if disconnected:
                return  # the client gave up while we were slow; nobody to answer
        if setting.mode == "down":
            response = wire.error(503, retry_after=1)
        elif setting.mode == "garbage":
            response = wire.garbage_response()
        elif setting.failure_rate and self.rng.random() < setting.failure_rate:
            response = wire.error(500)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def _setting(self, source: str, method: str) -> FaultSetting:
        """The fault of the agency called (counting its household queries), or NORMAL."""
        if source not in self.board:
            return NORMAL
        if method == "POST":
            self.board.queries[source] += 1
        return self.board.get(source)

    async def _delay(self, receive: Receive, seconds: float) -> tuple[bool, Receive]:
        """Wait `seconds` unless the client disconnects first (True), keeping the request
        body for the agency: the returned `receive` replays what was read meanwhile."""
        buffered: list[Message] = []

        async def watch() -> bool:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return True
                buffered.append(message)
                if not message.get("more_body", False):
                    # The whole body is in; only a disconnect can come now.
                    return (await receive())["type"] == "http.disconnect"

        try:
            async with asyncio.timeout(seconds):
                if await watch():
                    return True, receive
        except TimeoutError:
            pass

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        return False, replay

    async def _hang(self, receive: Receive) -> bool:
        """Hold the call for an hour; True when the client disconnected first.

        Waiting on `receive` rather than only sleeping matters: servers do not cancel a
        handler when its client goes away, so a bare sleep would pin every abandoned call
        (and a graceful shutdown) for the full hour. Cancellation also ends the wait.
        """
        self.board.hanging += 1
        try:
            async with asyncio.timeout(HANG_SECONDS):
                while (await receive())["type"] != "http.disconnect":
                    pass  # drain the request body; only the disconnect matters
        except TimeoutError:
            return False
        finally:
            self.board.hanging -= 1
        return True
