"""Running one verification, by id: claim → ask pending sources → settle each → score → report.

This module knows nothing of how a run was scheduled (in-process, a PostgreSQL queue, a
sweep resuming an abandoned run): any scheduler calls `Workflow.run(verification_id)`, as
often as it likes. Every effect is conditional, so a duplicate or late run changes nothing:
- the claim takes a lease on the verification row, renewed by a heartbeat while the run
  lives; nobody else starts it while the lease is live, anyone may once it has expired;
- a source already stored is never asked again, and storing an answer only fills a row
  that is still `pending`;
- finishing only ends a verification that has not ended.

Every database write is retried with backoff while the database is unavailable, so a run
outlives a database restart instead of dying half way (or while marking itself failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.assessment import AssessmentInput
from schemas.assessment import SourceOutcome as StoredOutcome
from schemas.evidence import HouseholdQuery
from schemas.report import Report
from schemas.verification import SourceStatus, VerificationStatus
from service.db import (
    WriteGate,
    each_statement_commits,
    is_database_unavailable,
    retry_while_unavailable,
)
from service.models import Verification
from service.near_relative.service import (
    any_near_relative,
    near_relative_matches,
)
from service.policy.catalog import PolicyCatalog
from service.report.service import assessment_input, build_report, row_values
from service.verification.fanout import FetchOutcome, SourceFetcher
from service.verification.household import household_query
from service.verification.repository import THIS_VERIFICATION, VerificationRepository
from service.verification.stored import StoredVerification

log = structlog.get_logger(__name__)

SETTLE_WINDOW_S = 0.1
"""How long a run waits, after an answer that is not the last, for others to store with it:
one transaction instead of several when partners answer a few ms apart (a transaction is a
BEGIN, a statement and a COMMIT, each a round trip on PostgreSQL). At 0.1 s a household
whose bank answers one poll after the others stores once, not twice: 9 % more households/s
for PostgreSQL workers, and no later answer for the caller (the wait ends with the last
answer); at 0.01 s it stored twice (`bench/RESULTS.md`)."""

DONE_CHANNEL = "hedui_verification_done"
"""PostgreSQL NOTIFY channel; the payload is the id of a verification that just ended."""


LEASE_LOST_GRACE_S = 0.5
"""How long a run whose heartbeat lost the lease may still return its result (a run that
committed its end returns within milliseconds; one taken over is cancelled after this)."""


def _error_of(task: asyncio.Task[Any]) -> BaseException | None:
    """A finished task's exception (None while it runs, or when it was cancelled)."""
    if not task.done() or task.cancelled():
        return None
    return task.exception()


async def _until_either_ends(verify: asyncio.Task[Any], heartbeat: asyncio.Task[Any]) -> None:
    """Until the run or its heartbeat ends. When the heartbeat lost the lease, another
    process took the run over, or this run's own last commit ended the verification (it
    clears the lease) as the heartbeat renewed it: a run that has committed returns at
    once, so it gets that long to return its result rather than lose it (its
    `run_finished` line, its count, its waiting request)."""
    await asyncio.wait((heartbeat, verify), return_when=asyncio.FIRST_COMPLETED)
    if not verify.done() and isinstance(_error_of(heartbeat), LeaseLost):
        await asyncio.wait((verify,), timeout=LEASE_LOST_GRACE_S)


def run_owner_id() -> str:
    """Who holds a lease: host, process and a random part (a pid can be reused)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunResult:
    """How a run ended, with the outcomes it gathered itself."""

    status: str
    recommendation: str | None
    completed_at: datetime
    outcomes: tuple[FetchOutcome, ...]
    settled: tuple[tuple[str, SourceStatus], ...] = ()
    """Every source of the verification as it was scored, with its status (the run's own
    outcomes, those stored before it and, finished by a collect, the late answer); empty
    when it failed unscored."""


def _log_finished(verification_id: str, result: RunResult, event: str = "run_finished") -> None:
    """One line a finished verification: how it ended, how many of its sources ended how,
    and which of them failed (by name: a source's name is no one's data). `run_finished`
    when a run ended it, `collect_finished` when the late answer of a parked source did."""
    tally = Counter(status.value for _, status in result.settled)
    failed = sorted(source for source, status in result.settled if status not in _ANSWERED)
    named = {"failed": failed} if failed else {}
    log.info(
        event,
        verification_id=verification_id,
        status=result.status,
        sources=dict(sorted(tally.items())),
        **named,
    )


_ANSWERED = frozenset({SourceStatus.ok, SourceStatus.no_record, SourceStatus.awaiting})


@dataclass(frozen=True)
class Claimed:
    """A claimed verification, copied out of the ORM so no session is shared across tasks."""

    verification_id: str
    region_code: str
    inputs: AssessmentInput
    pending: tuple[str, ...]
    versions: dict[str, str | None]
    """The connector version each source was planned with when the verification was created."""
    household: HouseholdQuery
    """What every partner is asked, with why (the consent document and the purpose)."""
    collected: bool = False
    """Some sources were parked with the partner before this run: their answers come from
    collects, so the report is scored from what is stored."""

    @classmethod
    def of(cls, verification: StoredVerification) -> Claimed:
        """What a run needs of a verification (ORM objects, or the rows its claim read)."""
        return cls._with(
            verification,
            assessment_input(verification),
            collected=any(row.collects or row.token_sealed for row in verification.sources),
        )

    @classmethod
    def fresh(cls, verification: Verification) -> Claimed:
        """`of` a verification just built for intake (`VerificationService.prepare`) and
        stored: every source pending, nothing collected yet. What `of` would read back of
        its rows is known, and reading it back from attributes never set costs more than
        the rest of the claim."""
        pending = tuple(
            StoredOutcome(
                source=row.source,
                status=SourceStatus.pending,
                connector_version=row.connector_version,
            )
            for row in verification.sources
        )
        return cls._with(
            verification, assessment_input(verification, sources=pending), collected=False
        )

    @classmethod
    def _with(
        cls, verification: StoredVerification, inputs: AssessmentInput, *, collected: bool
    ) -> Claimed:
        return cls(
            verification_id=verification.id,
            region_code=verification.region_code,
            inputs=inputs,
            pending=tuple(s.source for s in inputs.sources if s.status == SourceStatus.pending),
            # The version each source row was planned with (`inputs` carries it over).
            versions={s.source: s.connector_version for s in inputs.sources},
            household=household_query(verification),
            collected=collected,
        )


class RunEffects(Protocol):
    """What else a verification's end writes, in the transaction that ends it (so it
    happens exactly once): change detection for a re-check, outbox events."""

    def lookups(self, verification_id: str | ColumnElement[str]) -> tuple[ColumnElement[Any], ...]:
        """What `ended` needs to know first, read by the statement that ends the
        verification (so it costs no round trip of its own). Asked once, with
        `THIS_VERIFICATION` for the verification: the statement is built once."""
        ...

    async def ended(
        self,
        session: AsyncSession,
        verification_id: str,
        status: str,
        *,
        report: Report | None = None,
        inputs: AssessmentInput | None = None,
        looked_up: Sequence[Any] | None = None,
    ) -> None:
        """`looked_up`: the values of `lookups`, when the end read them."""
        ...


class LeaseLost(Exception):
    """Another process took over this run (our lease expired): stop quietly."""


class RunStopped(Exception):
    """A settle found the verification no longer this run's (withdrawn, ended, or its
    lease taken over): stop quietly, before the next heartbeat would tell."""


class Workflow:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        fetcher: SourceFetcher,
        catalog: PolicyCatalog,
        write_gate: WriteGate,
        *,
        owner: str | None = None,
        lease_s: float = 30.0,
        on_finished: Callable[[str, RunResult], None] | None = None,
        on_parked: Callable[[str], None] | None = None,
        effects: RunEffects | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settle_window_s: float = SETTLE_WINDOW_S,
    ) -> None:
        self.session_factory = session_factory
        self.fetcher = fetcher
        self.catalog = catalog
        self.write_gate = write_gate
        self.owner = owner or run_owner_id()
        self.lease = timedelta(seconds=lease_s)
        self.on_finished = on_finished
        self.on_parked = on_parked
        """Called when a run ends with sources awaiting the partner (still `running`)."""
        self.effects = effects
        self.clock = clock
        self.settle_window_s = settle_window_s
        self._notify = session_factory.kw["bind"].dialect.name == "postgresql"
        # What the end of a verification reads: built once, so its statement is too.
        self._lookups = effects.lookups(THIS_VERIFICATION) if effects is not None else ()
        announce = (self._announcement(THIS_VERIFICATION),) if self._notify else ()
        self._end_reading = (*self._lookups, *announce)

    async def claim_new(self, session: AsyncSession, verification: Verification) -> None:
        """Claim a verification inside the transaction that stores it (the caller commits),
        so its run can start without another round trip: `run(id, Claimed.of(it))`."""
        now = self.clock()
        await VerificationRepository.from_session(session).claim(
            verification.id, self.owner, now, now + self.lease
        )

    def new_claim(self) -> dict[str, Any]:
        """The columns of a verification claimed by this process, to insert it with: as
        `claim_new`, without a statement of its own (nobody can hold a verification that
        is not stored yet)."""
        now = self.clock()
        return {
            "status": VerificationStatus.running.value,
            "started_at": now,
            "lease_owner": self.owner,
            "lease_expires_at": now + self.lease,
        }

    async def run(self, verification_id: str, claimed: Claimed | None = None) -> RunResult | None:
        """Run the verification to its end; None when it is not ours to run (finished
        already, or another process holds a live lease) or our lease was lost.

        `claimed` is what this process claimed and committed already (`claim_new`)."""
        # Every log line of the run (partner calls, retries, failures) names the verification.
        with structlog.contextvars.bound_contextvars(verification_id=verification_id):
            return await self._run(verification_id, claimed)

    async def _run(self, verification_id: str, claimed: Claimed | None) -> RunResult | None:
        if claimed is None:
            claimed = await retry_while_unavailable(
                lambda: self._claim(verification_id), what="claim"
            )
            if claimed is None:
                return None
        heartbeat = asyncio.create_task(self._heartbeat(verification_id))
        verify = asyncio.create_task(self._verify(claimed))
        try:
            await _until_either_ends(verify, heartbeat)
        finally:
            for task in (heartbeat, verify):
                task.cancel()
            # Awaited even when this run is cancelled (withdrawn here, shutting down): the
            # partner calls and the heartbeat have ended when the run has.
            await asyncio.gather(heartbeat, verify, return_exceptions=True)
        if not verify.cancelled() and verify.exception() is None:
            result = verify.result()
            if result is not None:
                _log_finished(verification_id, result)
                if self.on_finished is not None:
                    self.on_finished(verification_id, result)
            return result
        if verify.cancelled():
            # The heartbeat ended first: the lease is another's now, or renewing it broke.
            error = heartbeat.exception()
            if isinstance(error, LeaseLost):
                log.warning("run_lease_lost", verification_id=verification_id)
                return None
        else:
            error = verify.exception()
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        if isinstance(error, RunStopped):
            log.info("run_stopped", verification_id=verification_id, why=str(error))
            return None
        # A bug, not the database (writes retry until it is back): the verification fails
        # visibly rather than staying `running` for ever.
        log.error(
            "verification_failed",
            verification_id=verification_id,
            error_type=type(error).__name__,
            exc_info=error,
        )
        reason = f"internal error ({type(error).__name__})"
        return await retry_while_unavailable(
            lambda: self._fail(verification_id, reason), what="mark failed"
        )

    async def release(self, verification_id: str) -> None:
        """Give up our lease at once (shutting down), so another process resumes the run
        without waiting for the lease to expire."""
        async with self.write_gate, self.session_factory() as session:
            await VerificationRepository.from_session(session).release(
                verification_id, self.owner, self.clock()
            )
            await session.commit()

    async def hand_back(self, verification_ids: Sequence[str]) -> int:
        """Give back verifications this process was given to run but never claimed
        (shutting down): see `VerificationRepository.hand_back_unclaimed`."""
        async with self.write_gate, self.session_factory() as session:
            handed = await VerificationRepository.from_session(session).hand_back_unclaimed(
                verification_ids, self.clock()
            )
            await session.commit()
        return handed

    async def _claim(self, verification_id: str) -> Claimed | None:
        now = self.clock()
        async with self.write_gate, self.session_factory() as session:
            # The claim and its read commit by themselves: on PostgreSQL one statement, with
            # no BEGIN and COMMIT round trips around it, for every job a worker takes; on
            # SQLite one transaction, which holds the database from the claim on. No
            # withdrawal lands between them; one after them is seen by the run's first
            # settle, and the run stops.
            await each_statement_commits(session)
            verification = await VerificationRepository.from_session(session).claim_reading(
                verification_id, self.owner, now, now + self.lease
            )
            await session.commit()
        return None if verification is None else Claimed.of(verification)

    async def _heartbeat(self, verification_id: str) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.write_gate, self.session_factory() as session:
                    renewed = await VerificationRepository.from_session(session).renew(
                        verification_id, self.owner, self.clock() + self.lease
                    )
                    await session.commit()
            except Exception as error:
                if not is_database_unavailable(error):
                    raise
                continue  # the lease may lapse meanwhile; the next renewal tells
            if not renewed:
                raise LeaseLost(verification_id)

    async def _verify(self, claimed: Claimed) -> RunResult | None:
        household = claimed.household
        settled: asyncio.Queue[FetchOutcome] = asyncio.Queue()
        deadline = self.fetcher.run_deadline()
        async with asyncio.TaskGroup() as group:
            for source in claimed.pending:
                group.create_task(
                    self._fetch(
                        claimed.verification_id,
                        source,
                        claimed.versions.get(source),
                        household,
                        settled,
                        deadline,
                    )
                )
            recording = group.create_task(self._record(claimed, settled))
        return recording.result()

    async def _fetch(
        self,
        verification_id: str,
        source: str,
        version: str | None,
        household: HouseholdQuery,
        settled: asyncio.Queue[FetchOutcome],
        deadline: float,
    ) -> None:
        outcome = await self.fetcher.fetch(source, household, version, deadline)
        # DEBUG: six lines a household at INFO cost a fifth of a millisecond of CPU each;
        # the run's one line (`run_finished`) says how its sources ended.
        log.debug(
            "source_settled",
            verification_id=verification_id,
            source=source,
            status=outcome.status.value,
            duration_ms=outcome.duration_ms,
            attempts=outcome.attempts,
        )
        settled.put_nowait(outcome)

    async def _record(
        self, claimed: Claimed, settled: asyncio.Queue[FetchOutcome]
    ) -> RunResult | None:
        """Commit outcomes as they arrive; the last batch commits together with the report.

        Outcomes that arrive within `settle_window_s` of each other, or while a commit is
        in flight, are written together in the next transaction, in one statement, so six
        sources cost a commit or two rather than six; no outcome waits for a slower source
        longer than that window before it is stored, and the window ends when the last
        one arrives.
        """
        fresh: list[FetchOutcome] = []
        remaining = len(claimed.pending)
        while True:
            batch = [await settled.get()] if remaining else []
            if self.settle_window_s > 0 and len(batch) + settled.qsize() < remaining:
                # More are coming: partners asked together mostly answer within a few ms
                # of each other, so wait that long for them and store them together; the
                # wait ends as soon as every answer is in (the last one never waits).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settle_window_s):
                        while len(batch) + settled.qsize() < remaining:
                            batch.append(await settled.get())
            while not settled.empty():
                batch.append(settled.get_nowait())
            remaining -= len(batch)
            fresh.extend(batch)
            result = await retry_while_unavailable(
                lambda batch=batch, last=not remaining: self._store(  # type: ignore[misc]
                    claimed, batch, fresh, last=last
                ),
                what="store outcomes",
            )
            if not remaining:
                return result

    async def _store(
        self,
        claimed: Claimed,
        batch: list[FetchOutcome],
        fresh: list[FetchOutcome],
        *,
        last: bool,
    ) -> RunResult | None:
        """One transaction: the batch's outcomes, and with the last batch the report, unless
        sources await the partner: then the run gives up its lease and the collects finish
        the verification."""
        parked = False
        async with self.write_gate, self.session_factory() as session:
            if not last and not any(o.status is SourceStatus.awaiting for o in batch):
                # The batch is one statement (`settle_sources`), atomic by itself: on
                # PostgreSQL no BEGIN and COMMIT round trips around it, for the first
                # answers of most runs. Should the run stop after it (the verification was
                # withdrawn, or is another's), what it stored stays: answers to sources
                # that were still to be asked, which a withdrawal leaves none of and a run
                # that took over does not ask again.
                await each_statement_commits(session)
            repository = VerificationRepository.from_session(session)
            left = 0
            members = [member.id_number for member in claimed.inputs.members]
            near_relatives = False
            outcomes = [outcome.row_values() for outcome in batch]
            if last or any(o.status is SourceStatus.awaiting for o in batch):
                # The verification's row lock first (see count_awaiting), before any
                # source's row, as a withdrawal takes them (on PostgreSQL; SQLite takes the
                # whole database). With the last batch it also reads whether the registry
                # holds a near relative of a member, for the report. Then the whole batch,
                # saying which sources it stored.
                reading, parameters = any_near_relative(session, members) if last else (None, None)
                left, looked_up, stored = await repository.count_awaiting_and_settle(
                    claimed.verification_id,
                    (reading,) if reading is not None else (),
                    outcomes,
                    parameters=parameters,
                )
                near_relatives = bool(looked_up and looked_up[0])
            else:
                stored = await repository.settle_sources(claimed.verification_id, outcomes)
            raced = len(stored) < len(batch)
            if raced:
                # Sources this run was asking are not pending any more: the verification
                # was withdrawn (or is another run's now). One read, only then, so the run
                # stops at the first answer after a withdrawal, not at its next heartbeat.
                why = await repository.still_ours(claimed.verification_id, self.owner)
                if why is not None:
                    raise RunStopped(why)
            awaiting = sum(o.source in stored and o.status is SourceStatus.awaiting for o in batch)
            if awaiting:
                left = await repository.count_awaiting(claimed.verification_id, awaiting)
            result = None
            if last and left:
                parked = await repository.park(claimed.verification_id, self.owner)
                if parked:
                    await self._announce(session, claimed.verification_id)
            elif last:
                sources = await self._to_score(repository, claimed, fresh, raced=raced)
                # Read in this transaction, as current as the report it goes into.
                matches = await near_relative_matches(session, members) if near_relatives else ()
                inputs = claimed.inputs.model_copy(
                    update={"sources": sources, "near_relatives": matches}
                )
                result = await self._complete(session, claimed, inputs, fresh)
            await session.commit()
        if parked:
            log.info("verification_awaiting", verification_id=claimed.verification_id)
            if self.on_parked is not None:
                self.on_parked(claimed.verification_id)
        return result

    @staticmethod
    async def _to_score(
        repository: VerificationRepository,
        claimed: Claimed,
        fresh: list[FetchOutcome],
        *,
        raced: bool,
    ) -> tuple[StoredOutcome, ...]:
        """The sources the report scores: those in hand, unless another run stored some of
        them first (then what is stored)."""
        if raced or claimed.collected or any(o.parked is not None for o in fresh):
            verification = await repository.get(claimed.verification_id)
            if verification is None:  # pragma: no cover - it was claimed
                raise LookupError(claimed.verification_id)
            return tuple(assessment_input(verification).sources)
        return tuple(
            {
                **{s.source: s for s in claimed.inputs.sources},
                **{o.source: o.as_stored() for o in fresh},
            }.values()
        )

    async def finish_collected(
        self, session: AsyncSession, verification_id: str
    ) -> RunResult | None:
        """Score what is stored and finish the verification (within the caller's
        transaction, which has just settled its last awaiting source); None when it has
        ended already. The caller commits, then calls `finished`."""
        verification = await VerificationRepository.from_session(session).get(verification_id)
        if verification is None:
            return None
        claimed = Claimed.of(verification)
        matches = await near_relative_matches(
            session, [member.id_number for member in claimed.inputs.members]
        )
        inputs = claimed.inputs.model_copy(update={"near_relatives": matches})
        return await self._complete(session, claimed, inputs, [])

    def finished(self, verification_id: str, result: RunResult) -> None:
        """A verification finished outside a run (by a collect) and was committed."""
        _log_finished(verification_id, result, "collect_finished")
        if self.on_finished is not None:
            self.on_finished(verification_id, result)

    async def _complete(
        self,
        session: AsyncSession,
        claimed: Claimed,
        inputs: AssessmentInput,
        fresh: list[FetchOutcome],
    ) -> RunResult | None:
        """Score the facts (all in hand already) and finish the verification, unless it has
        finished already (then None, and nothing is written)."""
        policy = self.catalog.resolve(
            claimed.region_code, inputs.program, inputs.area, inputs.as_of
        )
        now = self.clock()
        if policy is None:
            # Checked at intake; only a policy file removed since then gets here.
            status, recommendation = VerificationStatus.failed.value, None
            looked_up = await self._finish(
                session,
                claimed.verification_id,
                status=status,
                error="no policy in force for this verification any more",
                completed_at=now,
            )
            if looked_up is None:
                return None
            if self.effects is not None:
                await self.effects.ended(
                    session, claimed.verification_id, status, looked_up=looked_up
                )
        else:
            built = build_report(
                claimed.verification_id, claimed.region_code, inputs, policy, generated_at=now
            )
            report = built.report
            status, recommendation = VerificationStatus.completed.value, report.recommendation
            looked_up = await self._finish(
                session,
                claimed.verification_id,
                status=status,
                recommendation=recommendation,
                completed_at=now,
                report=row_values(built, policy, inputs),
            )
            if looked_up is None:
                return None
            if self.effects is not None:
                await self.effects.ended(
                    session,
                    claimed.verification_id,
                    status,
                    report=report,
                    inputs=inputs,
                    looked_up=looked_up,
                )
        settled = tuple((source.source, source.status) for source in inputs.sources)
        return RunResult(status, recommendation, now, tuple(fresh), settled)

    async def _fail(self, verification_id: str, error: str) -> RunResult | None:
        now = self.clock()
        async with self.write_gate, self.session_factory() as session:
            looked_up = await self._finish(
                session,
                verification_id,
                status=VerificationStatus.failed.value,
                error=error,
                completed_at=now,
            )
            if looked_up is not None and self.effects is not None:
                await self.effects.ended(
                    session,
                    verification_id,
                    VerificationStatus.failed.value,
                    looked_up=looked_up,
                )
            await session.commit()
        if looked_up is None:
            return None
        result = RunResult(VerificationStatus.failed.value, None, now, ())
        if self.on_finished is not None:
            self.on_finished(verification_id, result)
        return result

    async def _finish(
        self, session: AsyncSession, verification_id: str, **values: Any
    ) -> Sequence[Any] | None:
        """End the verification unless it has ended already (then None; its report, if
        given as `report`, is not stored); what the effects look up, read by the same
        statement. On PostgreSQL the same statement announces the end to waiting API
        processes (`_announce`) and stores the report."""
        looked_up = await VerificationRepository.from_session(session).finish(
            verification_id, reading=self._end_reading, **values
        )
        return None if looked_up is None else looked_up[: len(self._lookups)]

    async def _announce(self, session: AsyncSession, verification_id: str) -> None:
        """Tell waiting API processes, when this transaction commits (PostgreSQL)."""
        if self._notify:
            await session.execute(select(self._announcement(verification_id)))

    @staticmethod
    def _announcement(verification_id: str | ColumnElement[str]) -> ColumnElement[Any]:
        """NOTIFY on `DONE_CHANNEL` with the verification's id: sent when the transaction
        commits, and not at all if it rolls back."""
        return func.pg_notify(DONE_CHANNEL, verification_id)
