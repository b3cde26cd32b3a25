"""Ask every planned partner source about a household, concurrently.

Each source gets its own time budget; whatever happens to one (timeout, garbage, a bug in
its connector) becomes that source's typed outcome and never disturbs the others. Each
fetch passes the connector's health gate first (pause, circuit breaker) and is accounted
for afterwards: attempts and latencies are counted by the fetch's own metered client.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorError,
    MalformedResponse,
    Parked,
    ParkingConfig,
    PartnerRejected,
    PartnerReportedError,
    collect_evidence,
    fetch_evidence,
    is_parking,
    parks,
    submit_evidence,
)
from connectors.registry import ConnectorRegistry, UnknownConnectorError
from schemas.assessment import SourceOutcome as StoredOutcome
from schemas.connector import CallOutcome
from schemas.evidence import Evidence, HouseholdQuery, Record, RequestContext
from schemas.identity import redact_id_numbers
from schemas.verification import SourceStatus
from service.connector.meter import CallMeter, PartnerPaused, Turns
from service.connector.monitor import PAUSED, HealthMonitor, Refusal, Ticket
from service.connector.throttle import Limits, LocalThrottle, Starved, Throttle
from service.connector.unloadable import UnloadableConnector
from service.connector.wiring import config_of

log = structlog.get_logger(__name__)

DETAIL_LIMIT = 300
DEADLINE_DETAIL = "no answer within the verification's overall deadline"
BULKHEAD_DETAIL = "no free slot for this source within its time budget (too many calls in flight)"
NOT_PARKING_DETAIL = "the connector can no longer collect a parked answer"
UNKNOWN_DETAIL = "no connector is registered under this name"
THROTTLE_DETAIL = (
    "no turn with this partner within the source's time budget (its agreed rate or "
    "concurrency was used up)"
)


@dataclass(frozen=True)
class FetchOutcome:
    source: str
    status: SourceStatus
    records: list[Record] = field(default_factory=list)
    detail: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    fetched_at: datetime | None = None
    duration_ms: int = 0
    connector_version: str | None = None
    parked: Parked | None = None
    """With status `awaiting`: the partner's token for the question, to collect it with."""
    collect_at: datetime | None = None
    """With status `awaiting`: when to collect it first."""
    collect_deadline: datetime | None = None
    """With status `awaiting`: the partner's own deadline (past it: `timeout`)."""
    call: CallOutcome | None = None
    """How the call to the partner ended, or why it was refused unasked (paused, circuit
    open); not kept with the row."""

    def row_values(self) -> dict[str, Any]:
        """Column values of the stored source row."""
        values: dict[str, Any] = {
            "source": self.source,
            "status": self.status.value,
            "records": [record.model_dump(mode="json") for record in self.records],
            "detail": self.detail,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "fetched_at": self.fetched_at,
            "duration_ms": self.duration_ms,
        }
        if self.parked is not None:
            values |= {
                "token": self.parked.token,
                "collect_at": self.collect_at,
                "collect_deadline": self.collect_deadline,
            }
        return values

    def as_stored(self) -> StoredOutcome:
        """The scorer's view of this outcome."""
        return StoredOutcome(
            source=self.source,
            status=self.status,
            records=tuple(self.records),
            fetched_at=self.fetched_at,
            detail=self.detail,
            connector_version=self.connector_version,
        )


class SourceFetcher:
    def __init__(
        self,
        registry: ConnectorRegistry,
        configs: dict[str, ConnectorConfig],
        client: httpx.AsyncClient,
        health: HealthMonitor | None = None,
        *,
        deadline_s: float = 20.0,
        throttle: Throttle | None = None,
    ) -> None:
        self.registry = registry
        self.configs = configs
        self.client = client
        self.health = health
        self.deadline_s = deadline_s
        self.throttle: Throttle = throttle or LocalThrottle()
        """Every request to a partner takes its turn here (the partner's agreed limits)."""
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        """Each source's bulkhead, by its bound: a new version of a declarative connector
        with another `max_concurrency` gets a bulkhead of that size (fetches still in the
        old one finish there)."""

    def resolve(self, source: str, version: str | None) -> tuple[Connector, ConnectorConfig]:
        """The connector (at the planned version) and its config; `KeyError` when unknown."""
        connector = self.registry.get_version(source, version)
        return connector, config_of(connector, self.configs)

    def _resolved(
        self, source: str, version: str | None, started_at: datetime
    ) -> tuple[Connector, ConnectorConfig] | FetchOutcome:
        """`resolve`, or the `error` outcome of a source no connector answers to (or whose
        stored spec no longer loads: the partner is not asked)."""
        try:
            resolved = self.resolve(source, version)
        except (UnknownConnectorError, KeyError):
            return _unasked(source, SourceStatus.error, UNKNOWN_DETAIL, started_at)
        connector, _ = resolved
        if isinstance(connector, UnloadableConnector):
            return _unasked(
                source, SourceStatus.error, connector.detail, started_at, connector.version
            )
        return resolved

    def run_deadline(self) -> float:
        """When a run starting now must have settled every source, on the loop's clock."""
        return asyncio.get_running_loop().time() + self.deadline_s

    async def fetch(
        self,
        source: str,
        household: HouseholdQuery,
        version: str | None = None,
        deadline: float | None = None,
    ) -> FetchOutcome:
        """One source's outcome; never raises (cancellation aside).

        `version` pins a declarative connector to the version the verification planned.
        With `deadline` (the run's, on the loop's clock: `run_deadline()`), the source's
        budget is the lesser of its own timeout and what remains; past it, the source is
        settled as `timeout` without being asked.
        """
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        resolved = self._resolved(source, version, started_at)
        if isinstance(resolved, FetchOutcome):
            return resolved
        connector, config = resolved
        version = connector.version
        capped = False
        if deadline is not None:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return _unasked(source, SourceStatus.timeout, DEADLINE_DETAIL, started_at, version)
            if remaining < config.timeout_s:
                config = config.model_copy(update={"timeout_s": remaining})
                capped = True
        if parks(connector, config):
            parking = connector

            def call(
                client: httpx.AsyncClient, config: ConnectorConfig
            ) -> Awaitable[Evidence | Parked]:
                return submit_evidence(parking, household, config, client)

        else:

            def call(
                client: httpx.AsyncClient, config: ConnectorConfig
            ) -> Awaitable[Evidence | Parked]:
                return fetch_evidence(connector, household, config, client)

        return await self._slotted(
            source,
            connector,
            config,
            version,
            call,
            started_at,
            started,
            capped,
            household.context,
        )

    async def collect(
        self,
        source: str,
        token: str,
        household: HouseholdQuery,
        version: str | None = None,
        *,
        within_s: float | None = None,
    ) -> FetchOutcome:
        """Ask once for the answer to a parked question (`token`); never raises.

        The answer settles the source (`ok`, `no_record`, or `error` for a broken answer);
        `Parked` again comes back as an `awaiting` outcome; a partner that fails for now
        (timeout, 5xx) comes back as `timeout` or `error` with `transient` detail, for the
        collector to decide. The source's own budget applies, not a run's deadline, or
        `within_s` if that is less (what is left before the partner's own deadline).
        """
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        resolved = self._resolved(source, version, started_at)
        if isinstance(resolved, FetchOutcome):
            return resolved
        connector, config = resolved
        version = connector.version
        if not is_parking(connector):
            return _unasked(source, SourceStatus.error, NOT_PARKING_DETAIL, started_at, version)
        parking = connector
        capped = within_s is not None and within_s < config.timeout_s
        if capped:
            config = config.model_copy(update={"timeout_s": within_s})

        def call(
            client: httpx.AsyncClient, config: ConnectorConfig
        ) -> Awaitable[Evidence | Parked]:
            return collect_evidence(parking, token, household, config, client)

        return await self._slotted(
            source,
            connector,
            config,
            version,
            call,
            started_at,
            started,
            capped,
            household.context,
        )

    async def _slotted(
        self,
        source: str,
        connector: Connector,
        config: ConnectorConfig,
        version: str | None,
        call: Callable[[httpx.AsyncClient, ConnectorConfig], Awaitable[Evidence | Parked]],
        started_at: datetime,
        started: float,
        capped: bool,
        context: RequestContext,
    ) -> FetchOutcome:
        """The call within the source's bulkhead: a slot first, out of the same budget."""
        bound = (source, config.max_concurrency)
        semaphore = self._slots.get(bound)
        if semaphore is None:
            semaphore = self._slots[bound] = asyncio.Semaphore(config.max_concurrency)
        loop = asyncio.get_running_loop()
        waiting_since = loop.time()
        try:
            if semaphore.locked():  # a free slot is taken at once, with no timer to set
                async with asyncio.timeout(config.timeout_s):
                    await semaphore.acquire()
            else:
                await semaphore.acquire()
        except TimeoutError:
            # Our own congestion, not the partner's fault: the breaker never hears of it.
            return FetchOutcome(
                source=source,
                status=SourceStatus.timeout,
                detail=BULKHEAD_DETAIL,
                started_at=started_at,
                fetched_at=datetime.now(UTC),
                connector_version=version,
            )
        try:
            # The wait for a slot comes out of the same budget.
            waited = loop.time() - waiting_since
            if waited > 0.001:
                remaining = max(config.timeout_s - waited, 0.001)
                config = config.model_copy(update={"timeout_s": remaining})
            return await self._admitted(
                source, call, config, version, started_at, started, capped, waited, context
            )
        finally:
            semaphore.release()

    async def _admitted(
        self,
        source: str,
        call: Callable[[httpx.AsyncClient, ConnectorConfig], Awaitable[Evidence | Parked]],
        config: ConnectorConfig,
        version: str | None,
        started_at: datetime,
        started: float,
        capped: bool,
        queued_s: float,
        context: RequestContext,
    ) -> FetchOutcome:
        """The fetch itself, once the source holds a slot of its bulkhead. Every request
        it sends carries `context` (the household's consent and purpose headers)."""
        grant = self.health.admit(source) if self.health is not None else None
        if isinstance(grant, Refusal):
            assert self.health is not None  # noqa: S101 - a refusal comes from the monitor
            self.health.record(grant, grant.outcome)
            return FetchOutcome(
                source=source,
                status=SourceStatus.error,
                detail=grant.detail,
                started_at=started_at,
                fetched_at=datetime.now(UTC),
                connector_version=version,
                call=grant.outcome,  # refused unasked: paused, or the circuit open
            )
        retry_budget = self.health.retry_budget(source) if self.health is not None else None
        turns = Turns(
            self.throttle,
            source,
            Limits(config.max_concurrency, config.rate_per_s),
            asyncio.get_running_loop().time() + config.timeout_s,
        )
        health = self.health
        meter = CallMeter(
            self.client,
            turns,
            retry_budget=retry_budget,
            # A pause stops the fetch's later requests too (polls, retries, turns waited
            # for), not only the fetches that start after it.
            paused=(lambda: health.paused(source)) if health is not None else None,
        )
        records: list[Record] = []
        detail: str | None = None
        parked: Parked | None = None
        retry_wait_s = 0.0
        try:
            async with meter.client(context) as client, asyncio.timeout(config.timeout_s):
                try:
                    answer = await call(client, config)
                finally:
                    retry_wait_s = client.retry_wait_s
            outcome, records, parked = _answered(answer)
        except asyncio.CancelledError:
            if self.health is not None and grant is not None:
                self.health.cancelled(grant, meter.attempts)
            raise
        except Exception as exc:
            outcome, detail = _classify(source, exc)
        duration_ms = round((time.perf_counter() - started) * 1000)
        outcome, detail = self._charged(
            grant,
            meter,
            outcome,
            detail,
            duration_ms,
            capped=capped,
            queued_s=queued_s,
            retry_wait_s=retry_wait_s,
        )
        fetched_at = datetime.now(UTC)
        if parked is not None:
            deadline_s = (
                config.collect_deadline_s
                if isinstance(config, ParkingConfig)
                else ParkingConfig.model_fields["collect_deadline_s"].default
            )
            return FetchOutcome(
                source=source,
                status=SourceStatus.awaiting,
                attempts=len(meter.attempts),
                started_at=started_at,
                fetched_at=fetched_at,
                duration_ms=duration_ms,
                connector_version=version,
                parked=parked,
                collect_at=fetched_at + timedelta(seconds=parked.collect_after_s),
                collect_deadline=fetched_at + timedelta(seconds=deadline_s),
            )
        return FetchOutcome(
            source=source,
            status=_STATUS.get(outcome, SourceStatus.error),
            records=records,
            detail=detail,
            attempts=len(meter.attempts),
            started_at=started_at,
            fetched_at=fetched_at,
            duration_ms=duration_ms,
            connector_version=version,
            call=outcome,
        )

    def _charged(
        self,
        grant: Ticket | None,
        meter: CallMeter,
        outcome: CallOutcome,
        detail: str | None,
        duration_ms: int,
        *,
        capped: bool,
        queued_s: float,
        retry_wait_s: float,
    ) -> tuple[CallOutcome, str | None]:
        """The fetch's outcome as recorded, and the partner's health charged with it only
        when it was the partner's doing (not a pause, a turn that never came, or hedui's
        own deadline or queue)."""
        if meter.stopped and outcome not in (CallOutcome.ok, CallOutcome.no_record):
            # Paused while under way: as a fetch refused at the start, never the partner's
            # failure, whatever the connector made of the request it could not send.
            outcome, detail = CallOutcome.paused, PAUSED
            if self.health is not None and grant is not None:
                self.health.cancelled(grant, meter.attempts)
        elif meter.starved and outcome not in (CallOutcome.ok, CallOutcome.no_record):
            # No turn with the partner came in time: hedui's own congestion under the
            # partner's agreed limits, whatever the connector made of it. Not the partner's
            # fault, so its health is not charged.
            outcome, detail = CallOutcome.timeout, THROTTLE_DETAIL
            if self.health is not None and grant is not None:
                self.health.cancelled(grant)
        elif (capped or queued_s > 0.001) and outcome is CallOutcome.timeout:
            # The run's deadline (or a wait for a bulkhead slot) cut this call short, not the
            # partner: its health is not charged with a timeout it might not have had within
            # its own budget.
            if capped:
                detail = DEADLINE_DETAIL
            if self.health is not None and grant is not None:
                self.health.cancelled(grant, meter.attempts)
        elif self.health is not None and grant is not None:
            # The partner's latency is its own time: waits for a turn under its agreed rate
            # and concurrency, for a slot of this process's bulkhead of fetches, and
            # between a failed attempt and its retry, are hedui's waiting, and must not
            # make a partner look slow (the throttle's metrics count the turns; a failing
            # partner is seen in its failures, not in the backoff hedui chose).
            queueing_s = meter.stalls.total_s + queued_s + retry_wait_s
            latency_ms = max(duration_ms - round(queueing_s * 1000), 0)
            self.health.record(
                grant, outcome, latency_ms=latency_ms, attempts=meter.attempts, detail=detail
            )
        return outcome, detail


_STATUS = {
    CallOutcome.ok: SourceStatus.ok,
    CallOutcome.no_record: SourceStatus.no_record,
    CallOutcome.timeout: SourceStatus.timeout,
}


def _answered(answer: Evidence | Parked) -> tuple[CallOutcome, list[Record], Parked | None]:
    """The outcome, records and parked question of an answer (a parked question is the
    partner answering: it accepted the question)."""
    if isinstance(answer, Parked):
        return CallOutcome.ok, [], answer
    records = list(answer.records)
    return (CallOutcome.ok if records else CallOutcome.no_record), records, None


_SETTLED_BY_HEDUI: tuple[tuple[type[Exception], CallOutcome, str], ...] = (
    (TimeoutError, CallOutcome.timeout, "no answer within the source's time budget"),
    # hedui's own congestion under the partner's agreed limits, not a connector's bug.
    (Starved, CallOutcome.timeout, THROTTLE_DETAIL),
    # An operator's pause, met by a request the fetch sent after it.
    (PartnerPaused, CallOutcome.paused, PAUSED),
)
"""Failures hedui's own limits and budgets cause, whatever connector code they pass through."""


def _classify(source: str, exc: Exception) -> tuple[CallOutcome, str]:
    """The outcome and detail a failed fetch is recorded with."""
    for kind, outcome, detail in _SETTLED_BY_HEDUI:
        if isinstance(exc, kind):
            return outcome, detail
    if isinstance(exc, PartnerReportedError):  # said in its own format: not garbled
        return CallOutcome.malformed, _detail("partner error", exc)
    if isinstance(exc, MalformedResponse):
        return CallOutcome.malformed, _detail("malformed response", exc)
    if isinstance(exc, PartnerRejected):
        return CallOutcome.rejected, _detail("partner error", exc)
    if isinstance(exc, ConnectorError):
        outcome = CallOutcome.unavailable if exc.transient else CallOutcome.malformed
        return outcome, _detail("partner error", exc)
    # A connector bug (KeyError included) must not turn into a 500 or a false answer;
    # the message of an arbitrary exception may carry personal data: only its type.
    log.exception("connector_crashed", source=source, error_type=type(exc).__name__)
    return CallOutcome.error, f"connector failed ({type(exc).__name__})"


def _detail(prefix: str, exc: Exception) -> str:
    text = redact_id_numbers(f"{prefix}: {exc}")
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def _unasked(
    source: str,
    status: SourceStatus,
    detail: str,
    started_at: datetime,
    version: str | None = None,
) -> FetchOutcome:
    """An outcome settled without asking the partner."""
    return FetchOutcome(
        source=source,
        status=status,
        detail=detail,
        started_at=started_at,
        fetched_at=datetime.now(UTC),
        connector_version=version,
    )
