"""Collecting parked sources: answers a partner gives later ("accepted, collect later").

A run that submits to a parking connector (the bank's inquiry) and gets no answer within
`park_after_s` stores the partner's token with the source, now `awaiting`, and ends without
holding anything. `Collector.collect_due` is one pass over the awaiting sources whose
collect is due: it knows nothing of how it is scheduled (the shared periodic scheduler in
every process that runs verifications, or a test calling it with its own clock).

Each due source is claimed with a conditional update that moves its next collect past a
short lease, so two collectors (processes, workers) never collect one source at once; a
collector that dies lets it fall due again when the lease ends. Then the partner is asked
once (`collect`, through the same bulkhead, breaker and throttle as every call):
- an answer settles the source (`WHERE status = 'awaiting'`), and the collect that settles
  the last awaiting source of a verification with nothing pending builds its report, in
  the same transaction (the finish is conditional: at most once);
- a partner an operator paused is not asked: that collect is not counted, and the next is
  one `collect_interval_s` later (the wait does not grow while it is paused);
- "not yet", or a partner failing for now, collects again later, the wait doubling from
  the connector's `collect_interval_s` up to `collect_max_interval_s`, never past the
  partner's deadline (`collect_deadline_s`): each collect's budget ends by it, the last
  one starts early enough to have one, and then the source settles as `timeout` (the
  report says `review`);
- a collect that fails on our side (a bug, a crash) is tried again, at most
  `max_failures` times in a row; then the source settles as `error`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from connectors.base import ConnectorConfig, ParkingConfig
from schemas.connector import CallOutcome
from schemas.evidence import HouseholdQuery
from schemas.verification import SourceStatus
from service.db import retry_while_unavailable
from service.jobs.workflow import RunResult, Workflow
from service.verification.fanout import FetchOutcome, SourceFetcher
from service.verification.household import household_query
from service.verification.repository import VerificationRepository

log = structlog.get_logger(__name__)

DEADLINE_DETAIL = "no answer from the partner before its own deadline"
FAILING_DETAIL = "collecting the partner's answer kept failing ({failures} times in a row)"
MIN_COLLECT_S = 1.0
"""The least time before the partner's deadline a collect is started with: with less left,
the source settles as `timeout` unasked. A collect's budget never reaches past the
deadline."""
SETTLES = frozenset({CallOutcome.malformed, CallOutcome.rejected})
"""A broken answer, or our question refused: asking again will not help."""
_DEFAULTS = ParkingConfig(base_url="http://defaults.invalid")


@dataclass(frozen=True)
class _Due:
    verification_id: str
    source: str
    version: str | None
    token: str
    deadline: datetime
    collects: int
    failures: int
    """Collects in a row that did not end cleanly, this one excluded."""
    household: HouseholdQuery


class Collector:
    def __init__(
        self,
        workflow: Workflow,
        fetcher: SourceFetcher,
        *,
        batch: int = 100,
        concurrency: int = 16,
        lease_s: float = 120.0,
        max_failures: int = 5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.workflow = workflow
        self.fetcher = fetcher
        self.batch = batch
        self.concurrency = concurrency
        self.lease = timedelta(seconds=lease_s)
        self.max_failures = max_failures
        self.clock = clock

    async def collect_due(self, now: datetime | None = None) -> int:
        """Collect every awaiting source due at `now` (default: the clock) that this
        collector claims; how many it collected."""
        now = now or self.clock()
        async with self.workflow.session_factory() as session:
            due = await VerificationRepository.from_session(session).due_collects(now, self.batch)
        if not due:
            return 0
        slots = asyncio.Semaphore(self.concurrency)

        async def one(verification_id: str, source: str) -> bool:
            async with slots:
                return await self._collect_one(verification_id, source, now)

        done = await asyncio.gather(*(one(v, s) for v, s in due))
        return sum(done)

    async def _collect_one(self, verification_id: str, source: str, now: datetime) -> bool:
        with structlog.contextvars.bound_contextvars(verification_id=verification_id):
            try:
                due = await retry_while_unavailable(
                    lambda: self._claim(verification_id, source, now), what="claim collect"
                )
                if due is None:
                    return False
                await self._collect(due, now)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Left claimed: it falls due again when the claim lapses, counted as a
                # failure (the claim counted it), so it is not retried for ever.
                # Only the type: a message may carry personal data.
                log.error("collect_failed", source=source, error_type=type(error).__name__)
            return True

    async def _claim(self, verification_id: str, source: str, now: datetime) -> _Due | None:
        async with self.workflow.write_gate, self.workflow.session_factory() as session:
            repository = VerificationRepository.from_session(session)
            if not await repository.claim_collect(verification_id, source, now, now + self.lease):
                return None  # another collector took it, or it has settled
            row = await repository.awaiting_source(verification_id, source)
            verification = await repository.get(verification_id)
            await session.commit()
        if row is None or verification is None:  # pragma: no cover - claimed just now
            return None
        return _Due(
            verification_id=verification_id,
            source=source,
            version=row.connector_version,
            token=row.token,
            deadline=row.collect_deadline or now,
            collects=row.collects,
            failures=row.collect_failures - 1,
            # The context (consent, purpose) is rebuilt from the stored verification too.
            household=household_query(verification),
        )

    async def _collect(self, due: _Due, now: datetime) -> None:
        if due.failures >= self.max_failures:
            await self._settle(
                due,
                FetchOutcome(
                    source=due.source,
                    status=SourceStatus.error,
                    detail=FAILING_DETAIL.format(failures=due.failures),
                    fetched_at=now,
                ),
            )
            return
        remaining_s = (due.deadline - now).total_seconds()
        if remaining_s < MIN_COLLECT_S:
            # No collect starts at (or just before) the partner's deadline: it would end
            # past it.
            await self._settle(
                due,
                FetchOutcome(
                    source=due.source,
                    status=SourceStatus.timeout,
                    detail=DEADLINE_DETAIL,
                    fetched_at=now,
                ),
            )
            return
        outcome = await self.fetcher.collect(
            due.source, due.token, due.household, due.version, within_s=remaining_s
        )
        # Refused unasked, the partner paused by an operator: not a collect (the partner
        # was not asked), so it is not counted, and the wait does not grow with the pause.
        paused = outcome.call is CallOutcome.paused
        if paused:
            log.info(
                "source_collect_paused",
                verification_id=due.verification_id,
                source=due.source,
                collects=due.collects - 1,
            )
        else:
            log.info(
                "source_collected",
                verification_id=due.verification_id,
                source=due.source,
                status=outcome.status.value,
                collects=due.collects,
                duration_ms=outcome.duration_ms,
            )
        if outcome.status in (SourceStatus.ok, SourceStatus.no_record) or outcome.call in SETTLES:
            await self._settle(due, outcome)
            return
        failed = outcome.call is CallOutcome.error
        # The next collect starts early enough to end by the deadline (its budget is what
        # is left then): half of what is left now, or the source's own budget if less.
        config = self._config(due)
        last_budget_s = min(config.timeout_s, remaining_s / 2)
        if last_budget_s < MIN_COLLECT_S:  # no time left for another collect
            await self._settle(
                due,
                FetchOutcome(
                    source=due.source,
                    status=SourceStatus.error if failed else SourceStatus.timeout,
                    detail=outcome.detail if failed else DEADLINE_DETAIL,
                    attempts=outcome.attempts,
                    fetched_at=outcome.fetched_at or now,
                    duration_ms=outcome.duration_ms,
                ),
            )
            return
        # Not answered yet, or the partner failing for now (or our bug: counted). Paused:
        # asked again at the first interval, so it is collected soon after the resume.
        after = (
            timedelta(seconds=config.collect_interval_s)
            if paused
            else self._next_wait(due, outcome, config)
        )
        at = min(now + after, due.deadline - timedelta(seconds=last_budget_s))
        await retry_while_unavailable(
            lambda: self._reschedule(due, at, failed=failed, counted=not paused),
            what="reschedule collect",
        )

    def _next_wait(self, due: _Due, outcome: FetchOutcome, config: ParkingConfig) -> timedelta:
        wait = config.collect_interval_s * 2 ** max(due.collects - 1, 0)
        if outcome.parked is not None:  # the partner's own suggestion, if it asks for more
            wait = max(wait, outcome.parked.collect_after_s)
        return timedelta(seconds=min(wait, config.collect_max_interval_s))

    def _config(self, due: _Due) -> ParkingConfig:
        try:
            config: ConnectorConfig = self.fetcher.resolve(due.source, due.version)[1]
        except KeyError:
            return _DEFAULTS
        return config if isinstance(config, ParkingConfig) else _DEFAULTS

    async def _reschedule(
        self, due: _Due, at: datetime, *, failed: bool, counted: bool = True
    ) -> None:
        async with self.workflow.write_gate, self.workflow.session_factory() as session:
            await VerificationRepository.from_session(session).reschedule_collect(
                due.verification_id, due.source, at, failed=failed, counted=counted
            )
            await session.commit()

    async def _settle(self, due: _Due, outcome: FetchOutcome) -> None:
        result = await retry_while_unavailable(
            lambda: self._store(due, outcome), what="store collected"
        )
        if result is not None:
            self.workflow.finished(due.verification_id, result)

    async def _store(self, due: _Due, outcome: FetchOutcome) -> RunResult | None:
        """One transaction: the source settled and, when it was the last one outstanding,
        the verification finished with its report."""
        workflow = self.workflow
        async with workflow.write_gate, workflow.session_factory() as session:
            repository = VerificationRepository.from_session(session)
            values = outcome.row_values()
            # It started when it was submitted; its attempts are the submit's.
            values.pop("started_at")
            values.pop("attempts")
            stored = await repository.settle_source(due.verification_id, was="awaiting", **values)
            result = None
            if stored:
                left = await repository.count_awaiting(due.verification_id, -1)
                if not left and not await repository.has_pending(due.verification_id):
                    result = await workflow.finish_collected(session, due.verification_id)
            await session.commit()
        return result
