"""A run interrupted after some sources answered resumes without asking them again."""

from datetime import UTC, date, datetime
from typing import ClassVar

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.base import CheckResult, ConnectorConfig
from connectors.registry import ConnectorRegistry
from schemas.evidence import Evidence, HouseholdQuery, PensionRecord
from schemas.verification import VerificationCreate
from service.auth.principal import Principal, Role
from service.auth.service import create_api_key
from service.db import WriteGate
from service.jobs.runner import VerificationRunner
from service.models import Report, Verification
from service.policy.catalog import PolicyCatalog
from service.verification.fanout import FanOut
from service.verification.repository import VerificationRepository
from service.verification.service import verification as verification_service
from tests.factories import make_id_number, member, verification_body


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
        await verification_service.store(session, created, body=body)
        # As if the process died after the first source answered and was stored.
        record = PensionRecord(id_number=applicant, status="receiving", monthly_amount=300)
        await VerificationRepository.from_session(session).settle_source(
            created.id,
            source="answered_src",
            status="ok",
            records=[record.model_dump(mode="json")],
        )
        await VerificationRepository.from_session(session).finish(created.id, status="running")
        await session.commit()

    async with httpx.AsyncClient() as client:
        configs = {
            name: ConnectorConfig(base_url="http://127.0.0.1:9") for name in registry.names()
        }
        runner = VerificationRunner(
            session_factory,
            FanOut(registry, configs, client),
            PolicyCatalog.load(),
            WriteGate(engine),
        )
        # What `resume_unfinished` does for each unfinished verification at start-up (called
        # for this one alone: the shared test database holds other tests' runs too).
        runner.start(created.id)
        await runner.wait(created.id, 10)
        await runner.close()

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
        key, _ = await create_api_key(session, role=Role.caseworker, region="53")
        body = VerificationCreate.model_validate(
            verification_body([member(make_id_number("530103"))], region_code="530103")
        )
        created, _ = await verification_service.prepare(
            session,
            principal=Principal(key.id, key.name, Role.caseworker, "53"),
            body=body,
            catalog=PolicyCatalog.load(),
            sources=[],
            today=date(2026, 11, 26),
        )
        await verification_service.store(session, created, body=body)
        repository = VerificationRepository.from_session(session)
        await repository.mark_running(created.id, first_start)
        await repository.mark_running(created.id, datetime(2026, 11, 27, tzinfo=UTC))
        await session.commit()
        stored = await session.get(Verification, created.id)
    assert stored is not None
    assert stored.started_at == first_start
    assert stored.status == "running"
