"""Runs are claimed, resumed and finished exactly once, however often they are started."""

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import asyncpg
import httpx
import pytest
from sqlalchemy import Connection, event, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import CheckResult, ConnectorConfig
from connectors.registry import ConnectorRegistry
from schemas.evidence import BankAccountRecord, Evidence, HouseholdQuery, PensionRecord
from schemas.verification import VerificationCreate
from service.auth.principal import Principal, Role
from service.auth.service import create_api_key
from service.db import WriteGate
from service.jobs.lease import LeaseQueue
from service.jobs.workflow import DONE_CHANNEL, SETTLE_WINDOW_S, Claimed, Workflow
from service.models import Report, SourceResult, Verification
from service.policy.catalog import PolicyCatalog
from service.recheck.effects import RunEnded
from service.verification.fanout import SourceFetcher
from service.verification.repository import VerificationRepository
from service.verification.service import verification as verification_service
from tests.conftest import CLIENT_TLS
from tests.factories import make_id_number, member, verification_body
from tests.stored import store_verification


class CountingConnector:
    """A fake partner source, registered explicitly, that counts how often it is asked."""

    title: ClassVar[str] = "counting test source"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.calls = 0

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        return CheckResult(ok=True)

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        self.calls += 1
        return Evidence(answered=household.id_numbers)


async def test_resume_asks_only_the_sources_still_pending(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    answered, pending = CountingConnector("answered_src"), CountingConnector("pending_src")
    registry = ConnectorRegistry()
    registry.add(answered, origin="plugin")
    registry.add(pending, origin="plugin")
    applicant = make_id_number("530103")
    async with session_factory() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="53")
        principal = Principal(key.id, key.name, Role.caseworker, "53")
        body = VerificationCreate.model_validate(
            verification_body([member(applicant, declared=100)], region_code="530103")
        )
        created, _ = await verification_service.prepare(
            session,
            principal=principal,
            body=body,
            catalog=PolicyCatalog.load(),
            sources=[("answered_src", "1"), ("pending_src", "1")],
            today=date(2026, 11, 26),
        )
        await verification_service.store(session, created)
        # As if the process died after the first source answered and was stored.
        record = PensionRecord(id_number=applicant, status="receiving", monthly_amount=300)
        await VerificationRepository.from_session(session).settle_source(
            created.id,
            source="answered_src",
            status="ok",
            records=[record.model_dump(mode="json")],
        )
        await VerificationRepository.from_session(session).mark_running(
            created.id, datetime.now(UTC)
        )
        await session.commit()

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        configs = {
            name: ConnectorConfig(base_url="http://127.0.0.1:9") for name in registry.names()
        }
        workflow = Workflow(
            session_factory,
            SourceFetcher(registry, configs, client),
            PolicyCatalog.load(),
            WriteGate(engine),
        )
        # What the sweep does for each unfinished verification nobody runs (called for
        # this one alone: the shared test database holds other tests' runs too).
        result = await workflow.run(created.id)

    assert result is not None

    assert answered.calls == 0
    assert pending.calls == 1
    async with session_factory() as session:
        finished = await session.get(Verification, created.id)
        report = await session.get(Report, created.id)
    assert finished is not None
    assert finished.status == "completed"
    assert report is not None
    # The stored pension (300) counted although its source was not asked again.
    assert report.body["household"]["monthly_income"] == "300.00"


async def test_resumed_run_keeps_its_first_start_time(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    first_start = datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)
    async with session_factory() as session:
        verification_id = await store_verification(session, [])
        repository = VerificationRepository.from_session(session)
        later = datetime(2026, 11, 27, tzinfo=UTC)
        assert await repository.claim(verification_id, "first", first_start, first_start)
        assert await repository.claim(verification_id, "second", later, later)
        await session.commit()
        stored = await session.get(Verification, verification_id)
    assert stored is not None
    assert stored.started_at == first_start
    assert stored.status == "running"


async def _stored(
    session_factory: async_sessionmaker[AsyncSession], sources: list[tuple[str, str]]
) -> str:
    async with session_factory() as session:
        verification_id = await store_verification(session, sources)
        await session.commit()
    return verification_id


def _workflow(
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    registry: ConnectorRegistry,
    client: httpx.AsyncClient,
    owner: str | None = None,
    settle_window_s: float = SETTLE_WINDOW_S,
) -> Workflow:
    configs = {name: ConnectorConfig(base_url="http://127.0.0.1:9") for name in registry.names()}
    return Workflow(
        session_factory,
        SourceFetcher(registry, configs, client),
        PolicyCatalog.load(),
        WriteGate(engine),
        owner=owner,
        settle_window_s=settle_window_s,
    )


async def test_a_live_lease_keeps_other_runs_away_and_an_expired_one_does_not(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    source = CountingConnector("leased_src")
    registry = ConnectorRegistry()
    registry.add(source, origin="plugin")
    verification_id = await _stored(session_factory, [("leased_src", "1")])
    now = datetime.now(UTC)
    async with session_factory() as session:
        # A worker claimed it and died: its lease runs for another minute.
        claimed = await VerificationRepository.from_session(session).claim(
            verification_id, "dead-worker", now, now + timedelta(minutes=1)
        )
        await session.commit()
    assert claimed

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        other = _workflow(engine, session_factory, registry, client, "other")
        while_live = await other.run(verification_id)
        later = now + timedelta(minutes=2)
        other.clock = lambda: later
        after_expiry = await other.run(verification_id)
        again = await other.run(verification_id)

    assert while_live is None
    assert after_expiry is not None
    assert after_expiry.status == "completed"
    assert again is None  # finished: a duplicate run does nothing
    assert source.calls == 1


async def test_the_sweep_resumes_a_run_whose_lease_expired(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    source = CountingConnector("swept_src")
    registry = ConnectorRegistry()
    registry.add(source, origin="plugin")
    verification_id = await _stored(session_factory, [("swept_src", "1")])
    now = datetime.now(UTC)
    async with session_factory() as session:
        # A worker claimed it and died; its lease ends in a minute. (Not in the past: the
        # live test server sweeping this database would take the run first.)
        await VerificationRepository.from_session(session).claim(
            verification_id, "dead-worker", now, now + timedelta(minutes=1)
        )
        await session.commit()

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        workflow = _workflow(engine, session_factory, registry, client, "sweeper")
        later = now + timedelta(minutes=2)
        workflow.clock = lambda: later
        queue = LeaseQueue(workflow, session_factory, concurrency=1000, clock=lambda: later)
        # Other tests' verifications share this database; sweeping them too is harmless
        # (every run is claimed) but only this one is checked.
        await queue.sweep()
        await queue.wait_idle()
        await queue.close()

    async with session_factory() as session:
        finished = await session.get(Verification, verification_id)
    assert finished is not None
    assert finished.status == "completed"
    assert finished.lease_owner is None
    assert source.calls == 1


async def test_a_stored_answer_is_never_replaced(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    verification_id = await _stored(session_factory, [("kept_src", "1")])
    async with session_factory() as session:
        repository = VerificationRepository.from_session(session)
        first = await repository.settle_source(verification_id, source="kept_src", status="ok")
        second = await repository.settle_source(
            verification_id, source="kept_src", status="error", detail="late duplicate"
        )
        done = await repository.finish(verification_id, status="completed")
        undone = await repository.finish(verification_id, status="failed")
        await session.commit()
        row = await session.get(Verification, verification_id)
    assert (first, second, done, undone) == (True, False, (), None)
    assert row is not None
    assert row.status == "completed"


async def test_a_policy_removed_since_intake_fails_the_run_with_its_reason(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    verification_id = await _stored(session_factory, [])
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        workflow = Workflow(
            session_factory,
            SourceFetcher(ConnectorRegistry(), {}, client),
            PolicyCatalog([]),  # the policy file is gone since the verification was stored
            WriteGate(engine),
            effects=RunEnded(),
        )
        result = await workflow.run(verification_id)
    assert result is not None
    assert result.status == "failed"
    async with session_factory() as session:
        stored = await session.get(Verification, verification_id)
        report = await session.get(Report, verification_id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.error == "no policy in force for this verification any more"
    assert report is None


@pytest.mark.postgres_only
async def test_the_end_of_a_run_is_announced_once_on_postgresql(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """API processes elsewhere waiting on it hear of it (NOTIFY when the end commits); a
    second run, which finds it ended, announces nothing."""
    verification_id = await _stored(session_factory, [])
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql", 1))
    await listener.add_listener(DONE_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
            workflow = _workflow(engine, session_factory, ConnectorRegistry(), client, "one")
            first = await workflow.run(verification_id)
            assert await asyncio.wait_for(heard.get(), 5) == verification_id
            async with session_factory() as session:
                again = await workflow.finish_collected(session, verification_id)
                await session.commit()
        await asyncio.sleep(0.2)
    finally:
        await listener.close()
    assert first is not None
    assert again is None
    assert heard.empty()


class TimedConnector(CountingConnector):
    """Answers when its gate opens."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate = asyncio.Event()

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        await self.gate.wait()
        return await super().fetch(household, config, client)


async def _timed(
    session_factory: async_sessionmaker[AsyncSession], *connectors: TimedConnector
) -> tuple[ConnectorRegistry, str]:
    """A registry of `connectors` and a stored verification that asks each of them."""
    registry = ConnectorRegistry()
    for connector in connectors:
        registry.add(connector, origin="plugin")
    return registry, await _stored(session_factory, [(c.name, "1") for c in connectors])


async def test_answers_a_few_ms_apart_are_stored_together_and_none_waits_for_a_slow_one(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    first, second, slow = (TimedConnector(f"timed_{n}") for n in ("first", "second", "slow"))
    registry, verification_id = await _timed(session_factory, first, second, slow)
    settles: list[str] = []
    isolation: list[str | None] = []

    def count(conn: Connection, _cursor: object, statement: str, *_: object) -> None:
        # On PostgreSQL the last settle is part of the statement that counts the sources
        # still awaiting the partner.
        if "UPDATE source_results" in statement:
            settles.append(statement)
            isolation.append(conn.get_execution_options().get("isolation_level"))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
            workflow = _workflow(engine, session_factory, registry, client, settle_window_s=0.3)
            run = asyncio.create_task(workflow.run(verification_id))
            await asyncio.sleep(0.05)
            first.gate.set()
            await asyncio.sleep(0.01)  # within the window: stored with the first
            second.gate.set()
            for _ in range(100):  # both stored, while the slow source has not answered
                await asyncio.sleep(0.01)
                async with session_factory() as session:
                    row = await VerificationRepository.from_session(session).get(verification_id)
                    assert row is not None
                    states = {source.source: source.status for source in row.sources}
                if states[first.name] == states[second.name] == "ok":
                    break
            assert states[slow.name] == "pending"
            assert len(settles) == 1  # one statement for both answers
            slow.gate.set()
            result = await asyncio.wait_for(run, 10)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert result is not None
    assert result.status == "completed"
    assert len(settles) == 2  # and one more for the last, with the report
    # The first is a statement by itself (on PostgreSQL no BEGIN and COMMIT around it);
    # the last commits with the report.
    postgresql = engine.dialect.name == "postgresql"
    assert isolation == (["AUTOCOMMIT", None] if postgresql else [None, None])


async def test_the_window_ends_when_the_last_answer_arrives(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    first, last = TimedConnector("window_first"), TimedConnector("window_last")
    registry, verification_id = await _timed(session_factory, first, last)
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        workflow = _workflow(engine, session_factory, registry, client, settle_window_s=30.0)
        run = asyncio.create_task(workflow.run(verification_id))
        await asyncio.sleep(0.05)
        first.gate.set()
        await asyncio.sleep(0.02)
        last.gate.set()
        # Both answers in: the run ends now, not when the 30 s window would have.
        result = await asyncio.wait_for(run, 5)
    assert result is not None
    assert result.status == "completed"


async def test_a_fresh_claim_is_the_claim_read_from_the_stored_rows(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """`Claimed.fresh` (the new verification, as intake built it) says what `Claimed.of`
    says of it, and of the same verification read back from the database."""
    async with session_factory() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="53")
        body = VerificationCreate.model_validate(
            verification_body(
                [
                    member(make_id_number("530103"), declared=100),
                    member(make_id_number("530103"), declared=250, relation="spouse"),
                ],
                region_code="530103",
            )
        )
        created, _ = await verification_service.prepare(
            session,
            principal=Principal(key.id, key.name, Role.caseworker, "53"),
            body=body,
            catalog=PolicyCatalog.load(),
            # In the order the stored rows are read back in (by name).
            sources=[("bank", "1.0"), ("pensions", "1.0"), ("vehicles", "2.1")],
            today=date(2026, 11, 26),
        )
        await verification_service.store(session, created)
        await session.commit()
        fresh = Claimed.fresh(created)
        assert fresh == Claimed.of(created)
        stored = await VerificationRepository.from_session(session).get(created.id)
        assert stored is not None
        assert fresh == Claimed.of(stored)
        assert fresh.pending == ("bank", "pensions", "vehicles")
        assert not fresh.collected


async def _claimed_as_the_orm_reads_it(
    session_factory: async_sessionmaker[AsyncSession], workflow: Workflow, verification_id: str
) -> Claimed | None:
    """The claim as it was made before `claim_reading`: the UPDATE, then the ORM's read of
    the verification with its members and sources, then `Claimed.of` of the objects."""
    now = workflow.clock()
    async with session_factory() as session:
        repository = VerificationRepository.from_session(session)
        if not await repository.claim(verification_id, workflow.owner, now, now + workflow.lease):
            return None
        verification = await repository.get(verification_id)
        await session.commit()
    assert verification is not None
    return Claimed.of(verification)


async def test_a_claim_reads_what_the_orm_reads_in_every_state_a_run_finds(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """A worker's claim (`claim_reading`: Core rows, sealed values opened) makes the same
    `Claimed` as the ORM's objects of the same rows: a new household, one resumed after a
    crash with sources settled, one with a source parked with its partner and one collected,
    an old consent document id and a tekun arrangement, a verification with no sources."""
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    sources = [
        ("bank", "1.0"),
        ("housing_fund", None),
        ("pensions", "1.0"),
        ("public_payroll", "1.0"),
        ("real_estate", "1.0"),
        ("vehicles", "2.1"),
    ]
    states: dict[str, str] = {}
    async with session_factory() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="53")
        principal = Principal(key.id, key.name, Role.caseworker, "53")
        for state in ("fresh", "resumed", "parked", "collected", "old consent", "no sources"):
            applicant = make_id_number("530103")
            body = VerificationCreate.model_validate(
                verification_body(
                    [
                        member(applicant, name="张三", declared="1234.50"),
                        member(make_id_number("530103"), "李四", "spouse", declared=0),
                        member(make_id_number("530103"), "张小五", "child", declared="0.07"),
                    ],
                    region_code="530103",
                )
            )
            created, _ = await verification_service.prepare(
                session,
                principal=principal,
                body=body,
                catalog=PolicyCatalog.load(),
                sources=[] if state == "no sources" else sources,
                today=date(2026, 11, 26),
            )
            await verification_service.store(session, created)
            states[state] = created.id
            repository = VerificationRepository.from_session(session)
            pension = PensionRecord(id_number=applicant, status="receiving", monthly_amount=300)
            settled = {"attempts": 1, "fetched_at": at}
            if state in ("resumed", "parked", "collected"):
                await repository.settle_sources(
                    created.id,
                    [
                        {
                            "source": "pensions",
                            "status": "ok",
                            "records": [pension.model_dump(mode="json")],
                            **settled,
                        },
                        {"source": "vehicles", "status": "no_record", "records": [], **settled},
                        {
                            "source": "public_payroll",
                            "status": "error",
                            "records": [],
                            "detail": "the partner answered 503",
                            **settled,
                        },
                    ],
                )
            if state in ("parked", "collected"):
                parked = {"token": "partner-token", "collect_at": at, "collect_deadline": at}
                await repository.settle_source(
                    created.id, source="bank", status="awaiting", records=[], **parked
                )
            if state == "collected":
                await repository.settle_source(
                    created.id,
                    source="bank",
                    was="awaiting",
                    status="ok",
                    records=[
                        BankAccountRecord(
                            id_number=applicant, bank="农业银行", account="6228", balance=10
                        ).model_dump(mode="json")
                    ],
                    fetched_at=at,
                )
                await session.execute(
                    update(SourceResult)
                    .where(SourceResult.verification_id == created.id)
                    .where(SourceResult.source == "bank")
                    .values(collects=2)
                )
            if state == "old consent":
                # Stored before consent ids were bounded; the program's arrangement too.
                await session.execute(
                    update(Verification)
                    .where(Verification.id == created.id)
                    .values(
                        consent_document_id="授权书 第12号",
                        program="tekun",
                        support_mode="dispersed",
                        care_grade=2,
                    )
                )
        await session.commit()

    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        workflow = Workflow(
            session_factory,
            SourceFetcher(ConnectorRegistry(), {}, client),
            PolicyCatalog.load(),
            WriteGate(engine),
        )
        other = Workflow(
            session_factory,
            SourceFetcher(ConnectorRegistry(), {}, client),
            PolicyCatalog.load(),
            WriteGate(engine),
        )
        for state, verification_id in states.items():
            read = await _claimed_as_the_orm_reads_it(session_factory, workflow, verification_id)
            claimed = await workflow._claim(verification_id)
            assert read is not None, state
            assert claimed == read, state
            assert claimed.inputs == read.inputs, state  # the records and incomes included
            assert claimed.household == read.household, state
            # Held by `workflow`'s lease now: nobody else's claim takes it.
            assert await other._claim(verification_id) is None, state

    async with session_factory() as session:
        stored = await VerificationRepository.from_session(session).get(states["fresh"])
        assert stored is not None
        assert stored.status == "running"
        assert stored.lease_owner == workflow.owner
    # The states are the ones named (a run resumed asks only what is pending; parked or
    # collected sources make the report scored from what is stored).
    claims = {state: await workflow._claim(id_) for state, id_ in states.items()}
    assert {state: (c.pending, c.collected) for state, c in claims.items() if c is not None} == {
        "fresh": (tuple(name for name, _ in sources), False),
        "resumed": (("bank", "housing_fund", "real_estate"), False),
        "parked": (("housing_fund", "real_estate"), True),
        "collected": (("housing_fund", "real_estate"), True),
        "old consent": (tuple(name for name, _ in sources), False),
        "no sources": ((), False),
    }
    tekun = claims["old consent"]
    assert tekun is not None
    assert (tekun.inputs.support_mode, tekun.inputs.care_grade) == ("dispersed", 2)
    assert tekun.household.context.consent_id != "授权书 第12号"  # made fit for a header


async def test_a_queue_job_taken_but_never_claimed_is_handed_back_at_shutdown(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """A worker stopped (SIGTERM) while its runs had not claimed their verifications yet:
    pgqueuer drops the jobs it cancels, so nothing would ever run them. The queue hands
    them back as lapsed leases, which every worker's sweep resumes."""
    from pgqueuer.models import Job

    from service.jobs.pgqueue import PgQueue

    registry = ConnectorRegistry()
    registry.add(CountingConnector("handed_src"), origin="plugin")
    verification_id = await _stored(session_factory, [("handed_src", "1")])
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        workflow = _workflow(engine, session_factory, registry, client, "stopping-worker")
        started = asyncio.Event()

        async def never_claims(_verification_id: str, _claimed: Claimed | None = None) -> None:
            started.set()
            await asyncio.Event().wait()  # still before its claim when the worker stops

        workflow.run = never_claims  # type: ignore[method-assign]
        sweeper = LeaseQueue(workflow, session_factory, runs_here=False, sweep_unclaimed=False)
        queue = PgQueue(workflow, engine, sweeper)
        job = Job.model_construct(payload=verification_id.encode())
        taken = asyncio.create_task(queue._run_job(job))
        await started.wait()
        await queue.close()
        await taken  # pgqueuer would log it done (or cancelled): either way it is gone
    later = datetime.now(UTC) + timedelta(seconds=1)
    async with session_factory() as session:
        due = await VerificationRepository.from_session(session).due_ids(
            later, unclaimed_before=None, limit=10_000
        )
        stored = await session.get(Verification, verification_id)
    assert verification_id in due  # a worker's sweep (lapsed leases only) takes it up
    assert stored is not None
    assert (stored.status, stored.lease_owner) == ("queued", None)
