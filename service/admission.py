"""Load shedding and per-API-key rate limits for `POST /v1/verifications`.

Both are decided before anything is stored or any partner is asked. Both are per process:
the in-flight bound counts the runs this process holds, and the rate limit counts the
requests this process admitted (with N API processes a key may get N times its limit).
Keys are known by their key id only; a token never reaches a log line or a metric.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import structlog
from fastapi import Depends, Request, Response

from service.auth.principal import Principal
from service.connector.metrics import Metrics
from service.deps import CaseworkerDep, QueueDep, SettingsDep
from service.errors import Overloaded, RateLimited

log = structlog.get_logger(__name__)

WINDOW_S = 60
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

    def take(self, key_id: str) -> Quota:
        now = self.clock()
        start, used = self._windows.get(key_id, (now, 0))
        if now - start >= WINDOW_S:
            start, used = now, 0
            # Forget every key whose window is over, so memory stays bounded by active keys.
            self._windows = {k: w for k, w in self._windows.items() if now - w[0] < WINDOW_S}
        reset_s = min(WINDOW_S, max(1, math.ceil(WINDOW_S - (now - start))))
        if used >= self.per_minute:
            return Quota(False, self.per_minute, 0, reset_s)
        self._windows[key_id] = (start, used + 1)
        return Quota(True, self.per_minute, self.per_minute - used - 1, reset_s)


def get_rate_limiter(request: Request) -> RateLimiter | None:
    limiter: RateLimiter | None = request.state.rate_limiter
    return limiter


async def admit(
    request: Request,
    response: Response,
    principal: CaseworkerDep,
    settings: SettingsDep,
    queue: QueueDep,
    limiter: Annotated[RateLimiter | None, Depends(get_rate_limiter)],
) -> Principal:
    """Shed when saturated (503), then apply the caller's rate limit (429)."""
    metrics: Metrics = request.state.metrics
    if queue.in_flight() >= settings.max_in_flight_runs:
        metrics.shed.labels("saturated").inc()
        log.warning("request shed", reason="saturated", key_id=principal.key_id)
        raise Overloaded()
    if limiter is not None:
        quota = limiter.take(principal.key_id)
        if not quota.allowed:
            metrics.shed.labels("rate_limited").inc()
            log.info("request rate limited", key_id=principal.key_id)
            raise RateLimited(quota.reset_s, quota.headers())
        response.headers.update(quota.headers())
    return principal


AdmittedCaseworkerDep = Annotated[Principal, Depends(admit)]
