"""Load shedding and per-API-key rate limits for `POST /v1/verifications`.

All are decided before anything is stored or any partner is asked. The in-flight bound
counts the runs this process holds; in queue mode (`HEDUI_RUN_MODE=queue`, where workers
run what API processes store) the queue-depth bound counts the verifications every
process stored and no worker has claimed yet, read at most once a second; the rate limit
counts the requests this process admitted (with N API processes a key may get N times its
limit). Keys are known by their key id only; a token never reaches a log line or a metric.

A refusal must be cheap exactly when the process has no time to spare, so both are given
at the door (`ShedFirst`, pure ASGI, before the caller is looked up in the database and
before a byte of the body is read): a 503 from in-memory counts (and the cached queue
depth), a 429 for a token whose key used up its quota this window (the limiter remembers
which key a token's digest belongs to from that key's admitted requests). What gets past
the door is decided again, exactly, by `admit`.
"""

import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated

import structlog
from fastapi import Depends, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.principal import Principal, Role
from service.auth.roles import ROLE_CHECKS, allowed_roles, check_role
from service.auth.service import bearer_token
from service.config import Settings
from service.connector.metrics import Metrics
from service.deps import IntakeParts, PrincipalDep
from service.error_handlers import problem_response
from service.errors import Overloaded, RateLimited
from service.jobs.depth import QueueDepth
from service.jobs.queue import RunQueue

log = structlog.get_logger(__name__)

WINDOW_S = 60
SHED_LOG_EVERY_S = 10.0
"""A flood of refused requests leaves one log line per reason this often, with its count."""
POLICY = "default"


@dataclass(frozen=True, slots=True)
class Quota:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers)."""
        return {
            "RateLimit-Policy": f'"{POLICY}";q={self.limit};w={WINDOW_S}',
            "RateLimit": f'"{POLICY}";r={self.remaining};t={self.reset_s}',
        }


@dataclass
class RateLimiter:
    """Fixed one-minute windows per key id, in this process's memory."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    _keys: dict[bytes, str] = field(default_factory=dict)
    """Token digest → key id, of the keys admitted in a window still open."""

    def take(self, key_id: str) -> Quota:
        now = self.clock()
        start, used = self._windows.get(key_id, (now, 0))
        if now - start >= WINDOW_S:
            start, used = now, 0
            # Forget every key whose window is over, so memory stays bounded by active keys.
            self._windows = {k: w for k, w in self._windows.items() if now - w[0] < WINDOW_S}
            self._keys = {t: k for t, k in self._keys.items() if k in self._windows}
        reset_s = self._reset_s(now, start)
        if used >= self.per_minute:
            return Quota(False, self.per_minute, 0, reset_s)
        self._windows[key_id] = (start, used + 1)
        return Quota(True, self.per_minute, self.per_minute - used - 1, reset_s)

    def learn(self, token: str, key_id: str) -> None:
        """`token` belongs to `key_id` (just authenticated): its next requests can be
        refused at the door once the key's quota is spent."""
        if key_id in self._windows:
            self._keys[token_digest(token)] = key_id

    def spent(self, token: str) -> Quota | None:
        """The 429 for a token whose key is known to have used up this window's quota, or
        None: an unknown token, or quota left. Memory only; nothing is looked up."""
        key_id = self._keys.get(token_digest(token))
        window = self._windows.get(key_id) if key_id is not None else None
        if window is None:
            return None
        now = self.clock()
        start, used = window
        if now - start >= WINDOW_S or used < self.per_minute:
            return None
        return Quota(False, self.per_minute, 0, self._reset_s(now, start))

    @staticmethod
    def _reset_s(now: float, start: float) -> int:
        return min(WINDOW_S, max(1, math.ceil(WINDOW_S - (now - start))))


def token_digest(token: str) -> bytes:
    """A token as the limiter keeps it: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).digest()


class Intake:
    """Requests admitted in this process whose run has not started yet.

    They count against the in-flight bound with the runs themselves: a crowd arriving at
    once would otherwise pass the check together, before any of its runs has started.
    Refusals are noted here too, so that a flood of them is one log line per reason and
    period (the metric counts every one)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.pending = 0
        self.clock = clock
        self._shed: dict[str, tuple[float, int]] = {}

    def note_shed(self, reason: str) -> int | None:
        """Note one refused request; when a log line is due (the first refusal, then at
        most one every `SHED_LOG_EVERY_S`), how many were refused since the last line."""
        now = self.clock()
        logged_at, count = self._shed.get(reason, (-SHED_LOG_EVERY_S, 0))
        count += 1
        if now - logged_at < SHED_LOG_EVERY_S:
            self._shed[reason] = (logged_at, count)
            return None
        self._shed[reason] = (now, 0)
        return count

    def reserve(self) -> "Seat":
        self.pending += 1
        return Seat(self)


class Seat:
    """One admitted request's place until its run has started (or it failed)."""

    def __init__(self, intake: Intake) -> None:
        self._intake: Intake | None = intake

    def release(self) -> None:
        """The run has started (or is queued for a worker, or never will): idempotent."""
        if self._intake is not None:
            self._intake.pending -= 1
            self._intake = None


@dataclass(frozen=True, slots=True)
class Admitted:
    principal: Principal
    seat: Seat
    parts: IntakeParts
    """What the intake uses of the app (read here: one dependency fewer per request)."""


CASEWORKERS = allowed_roles(Role.caseworker)


async def overload(
    settings: Settings, queue: RunQueue, intake: Intake, queue_depth: QueueDepth
) -> str | None:
    """Why a new verification would be shed now (`queue_full`, `saturated`), or None.

    The in-flight check comes last and awaits nothing: a caller that reserves a seat right
    after it returns cannot be overtaken by another request in between."""
    if settings.run_mode == "queue":
        depth = await queue_depth.read()
        if depth is not None and depth >= settings.max_queue_depth:
            return "queue_full"
    if queue.in_flight() + intake.pending >= settings.max_in_flight_runs:
        return "saturated"
    return None


def refuse(reason: str, metrics: Metrics, intake: Intake, key_id: str | None = None) -> None:
    """Count a refusal; log one line per reason and period, with how many it stands for."""
    metrics.shed.labels(reason).inc()
    count = intake.note_shed(reason)
    if count is not None:
        log.warning("requests shed", reason=reason, count=count, key_id=key_id)


def overloaded(reason: str) -> Overloaded:
    return Overloaded(Overloaded.QUEUED if reason == "queue_full" else Overloaded.RUNNING)


async def admit(
    request: Request, response: Response, principal: PrincipalDep
) -> AsyncIterator[Admitted]:
    """Shed when too many wait in queue mode or too many run here (503), then apply the
    caller's rate limit (429). The request holds a seat until the endpoint says its run
    has started (`seat.release()`), and at the latest until it ends.

    The caller's role is checked and the app's parts are read from its state here rather
    than in dependencies of their own (each costs FastAPI's resolution on every
    verification: with the role check and the intake's parts as two more, the request's
    dependencies took about 110 µs more CPU)."""
    check_role(principal, CASEWORKERS)
    state = request.state
    metrics: Metrics = state.metrics
    settings: Settings = state.settings
    queue: RunQueue = state.queue
    queue_depth: QueueDepth = state.queue_depth
    intake: Intake = state.intake
    limiter: RateLimiter | None = state.rate_limiter
    reason = await overload(settings, queue, intake, queue_depth)
    if reason is not None:
        refuse(reason, metrics, intake, principal.key_id)
        raise overloaded(reason)
    if limiter is not None:
        quota = limiter.take(principal.key_id)
        token = bearer_token(request.headers.get("authorization"))
        if token is not None:
            limiter.learn(token, principal.key_id)
        if not quota.allowed:
            refuse("rate_limited", metrics, intake, principal.key_id)
            raise RateLimited(quota.reset_s, quota.headers())
        response.headers.update(quota.headers())
    # Nothing has awaited since the in-flight check: a crowd is counted one at a time.
    seat = intake.reserve()
    try:
        yield Admitted(
            principal,
            seat,
            IntakeParts(
                settings,
                state.catalog,
                state.registry,
                queue,
                state.completions,
                state.write_gate,
            ),
        )
    finally:
        seat.release()


ROLE_CHECKS[admit] = (CASEWORKERS, False)
AdmittedCaseworkerDep = Annotated[Admitted, Depends(admit, scope="function")]


class ShedFirst:
    """Pure ASGI, before authentication: while the process is saturated (or, in queue mode,
    the queue is full), `POST /v1/verifications` is refused without looking the caller up
    in the database or reading a byte of the body; so is a token whose key has used up its
    quota this window (429, see `RateLimiter.spent`). A refusal must cost next to nothing
    when the process has no time to spare; a 503 tells nobody anything but "busy", a 429
    only what the key's owner was told at its last admitted request. What gets past is
    decided again, exactly, by `admit`.

    A key revoked after it spent its quota gets 429 until its window closes, then 401."""

    def __init__(self, app: ASGIApp, *, path: str = "/v1/verifications") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"].rstrip("/") != self.path
            or "intake" not in state
        ):
            await self.app(scope, receive, send)
            return
        reason = await overload(
            state["settings"], state["queue"], state["intake"], state["queue_depth"]
        )
        error: Overloaded | RateLimited
        if reason is not None:
            error = overloaded(reason)
        else:
            quota = self._spent(scope, state.get("rate_limiter"))
            if quota is None:
                await self.app(scope, receive, send)
                return
            reason = "rate_limited"
            error = RateLimited(quota.reset_s, quota.headers())
        refuse(reason, state["metrics"], state["intake"])
        await problem_response(error.problem(scope["path"]), error.headers)(scope, receive, send)

    @staticmethod
    def _spent(scope: Scope, limiter: RateLimiter | None) -> Quota | None:
        if limiter is None:
            return None
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = bearer_token(value.decode("latin-1"))
                return limiter.spent(token) if token is not None else None
        return None
