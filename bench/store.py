"""CPU per verification of a run's last store: the sources' outcomes, the report, the end.

In one process, on a migrated database (a temporary SQLite file, or a throwaway PostgreSQL
database with `--database-url`), `--households` three-person verifications are stored the
way intake stores them (claimed by the run in the same insert); then, for each, the run's
last transaction (`Workflow._store` with all six sources answered together, as most runs
end) is timed: the outcomes sealed and settled, the near-relative lookup, the report built,
sealed and inserted, the verification ended, the effects, the commit. Printed: CPU µs per
verification of this process, per round (the median last); the report's scoring is part of
it (`build_report`), the partners' calls are not.

Run: `python -m bench.store [--households 400] [--rounds 5] [--database-url URL]`;
`--profile FILE` writes a cProfile of the timed part of the last round.
"""

import argparse
import asyncio
import cProfile
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.registry import ConnectorRegistry
from schemas.evidence import (
    BankAccountRecord,
    HousingFundRecord,
    PensionRecord,
    PropertyRecord,
    Record,
    VehicleRecord,
)
from schemas.identity import check_character
from schemas.verification import SourceStatus, VerificationCreate
from service.auth.principal import Principal, Role
from service.auth.service import create_api_key
from service.crypto.kek import write_key_file
from service.crypto.store import open_keyring
from service.db import WriteGate, create_engine, create_session_factory, migrate
from service.jobs.workflow import Claimed, Workflow
from service.policy.catalog import PolicyCatalog
from service.recheck.effects import RunEnded
from service.verification.fanout import FetchOutcome, SourceFetcher
from service.verification.service import verification as verification_service

REGION = "530103"
SOURCES = ("bank", "housing_fund", "pensions", "public_payroll", "real_estate", "vehicles")


def person(index: int) -> str:
    birth = (date(1950, 1, 1) + timedelta(days=index // 900)).strftime("%Y%m%d")
    first17 = f"{REGION}{birth}{index % 900 + 100:03d}"
    return first17 + check_character(first17)


def records_of(source: str, members: list[str], index: int) -> list[Record]:
    """A few records per source, about what the sandbox's synthetic people give."""
    first = members[0]
    match source:
        case "bank":
            return [
                BankAccountRecord(
                    id_number=id_number, bank="农业银行", account="6228", balance=Decimal("1520.35")
                )
                for id_number in members
            ]
        case "housing_fund":
            return [
                HousingFundRecord(
                    id_number=first,
                    status="active",
                    balance=Decimal("8210.00"),
                    monthly_deposit=Decimal("320.00"),
                )
            ]
        case "pensions":
            return [
                PensionRecord(id_number=id_number, status="none", monthly_amount=Decimal(0))
                for id_number in members
            ]
        case "real_estate":
            return [
                PropertyRecord(
                    id_number=first,
                    certificate="云(2019)昆明市不动产权第0012345号",
                    usage="residential",
                    area_m2=Decimal("62.5"),
                    region_code=REGION,
                )
            ]
        case "vehicles" if index % 7 == 0:
            return [VehicleRecord(id_number=first, plate="云A12345", type="car")]
    return []


def outcomes_of(members: list[str], index: int) -> list[FetchOutcome]:
    now = datetime.now(UTC)
    return [
        FetchOutcome(
            source=source,
            status=SourceStatus.ok,
            records=records_of(source, members, index),
            attempts=1,
            started_at=now - timedelta(milliseconds=100),
            fetched_at=now,
            duration_ms=100,
            connector_version="1",
        )
        for source in SOURCES
    ]


async def stored(
    factory: async_sessionmaker[AsyncSession], workflow: Workflow, count: int, start: int
) -> list[Claimed]:
    """`count` new verifications, stored as intake does (claimed by `workflow`)."""
    catalog = PolicyCatalog.load()
    claimed = []
    async with factory() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="53")
        await session.commit()
    principal = Principal(key.id, key.name, Role.caseworker, "53")
    for index in range(start, start + count):
        body = VerificationCreate.model_validate(
            {
                "reference": f"bench-{index}",
                "program": "dibao",
                "region_code": REGION,
                "area": "urban",
                "as_of": "2026-11-20",
                "consent": {"document_id": "AUTH-0001", "signed_on": "2026-11-01"},
                "members": [
                    {
                        "id_number": person(3 * index + offset),
                        "name": name,
                        "relation": relation,
                        "declared_monthly_income": 300 * (offset == 0),
                    }
                    for offset, (name, relation) in enumerate(
                        (("张三", "applicant"), ("李四", "spouse"), ("张小五", "child"))
                    )
                ],
            }
        )
        async with factory() as session:
            verification, _ = await verification_service.prepare(
                session,
                principal=principal,
                body=body,
                catalog=catalog,
                sources=[(source, "1") for source in SOURCES],
                today=date(2026, 11, 26),
            )
            await verification_service.store(session, verification, claim=workflow.new_claim())
            await session.commit()
        claimed.append(Claimed.fresh(verification))
    return claimed


async def one_round(
    factory: async_sessionmaker[AsyncSession],
    workflow: Workflow,
    count: int,
    start: int,
    profile: cProfile.Profile | None,
) -> float:
    claimed = await stored(factory, workflow, count, start)
    work = []
    for index, claim in enumerate(claimed):
        members = [member.id_number for member in claim.inputs.members]
        work.append((claim, outcomes_of(members, start + index)))
    if profile is not None:
        profile.enable()
    began = time.process_time()
    for claim, outcomes in work:
        result = await workflow._store(claim, outcomes, list(outcomes), last=True)
        if result is None or result.status != "completed":
            raise RuntimeError(f"the run ended {result}")
    spent = time.process_time() - began
    if profile is not None:
        profile.disable()
    return spent * 1e6 / count


async def measure(url: str, households: int, rounds: int, profile_to: str | None) -> None:
    engine: AsyncEngine = create_engine(url)
    await migrate(engine)
    with tempfile.TemporaryDirectory() as keys:
        kek = write_key_file(Path(keys) / "bench.key")
    factory = create_session_factory(engine, await open_keyring(engine, kek))
    async with httpx.AsyncClient() as client:
        workflow = Workflow(
            factory,
            SourceFetcher(ConnectorRegistry(), {}, client),
            PolicyCatalog.load(),
            WriteGate(engine),
            effects=RunEnded(),
        )
        await one_round(factory, workflow, 50, 0, None)  # warm caches and the pool
        figures = []
        for number in range(rounds):
            profile = cProfile.Profile() if profile_to and number == rounds - 1 else None
            figures.append(
                await one_round(factory, workflow, households, 100 + number * households, profile)
            )
            if profile is not None and profile_to:
                profile.dump_stats(profile_to)
    await engine.dispose()
    rounded = ", ".join(f"{figure:.0f}" for figure in figures)
    median = statistics.median(figures)
    print(f"{engine.dialect.name}: CPU µs per verification {rounded}; median {median:.0f}")


async def throwaway_postgres(url: str) -> tuple[str, str]:
    import asyncpg

    admin = url.replace("postgresql+asyncpg", "postgresql", 1)
    name = f"hedui_bench_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return url.rsplit("/", 1)[0] + f"/{name}", name


async def drop_postgres(url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql", 1))
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


async def main(arguments: argparse.Namespace) -> None:
    if arguments.database_url:
        url, name = await throwaway_postgres(arguments.database_url)
        try:
            await measure(url, arguments.households, arguments.rounds, arguments.profile)
        finally:
            await drop_postgres(arguments.database_url, name)
        return
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        await measure(url, arguments.households, arguments.rounds, arguments.profile)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server's database to create a throwaway database beside "
        "(postgresql+asyncpg://…); default a temporary SQLite file",
    )
    parser.add_argument("--profile", help="write a cProfile of the last round here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
