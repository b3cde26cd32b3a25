"""Outcomes that arrive together are stored together (one statement on PostgreSQL, one
`executemany` of a one-row statement on SQLite), which knows row by row what it stored: a
source stored already (by a duplicate run) keeps its answer and is not reported as
stored."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Integer, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.models import SourceResult
from service.verification.repository import VerificationRepository
from tests.stored import store_verification


async def _planned(session: AsyncSession, sources: list[str]) -> str:
    return await store_verification(session, [(name, "1") for name in sources])


@pytest.mark.parametrize(
    "every_records", [True, False], ids=["every outcome with records", "one without"]
)
async def test_a_batch_stores_only_what_is_still_pending_and_says_which(
    session_factory: async_sessionmaker[AsyncSession], every_records: bool
) -> None:
    """A run's outcomes always carry their records (on SQLite, what tells which rows this
    statement stored); an outcome without still settles."""
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    record = {"id_number": "x", "status": "receiving"}
    async with session_factory() as session:
        verification_id = await _planned(session, ["answered", "raced", "parked", "untouched"])
        repository = VerificationRepository.from_session(session)
        # A duplicate run stored this one first.
        assert await repository.settle_source(
            verification_id, source="raced", status="no_record", records=[], attempts=1
        )

        stored = await repository.settle_sources(
            verification_id,
            [
                {"source": "answered", "status": "ok", "records": [record], "attempts": 2},
                {
                    "source": "raced",
                    "status": "error",
                    "detail": "late",
                    "attempts": 3,
                    **({"records": []} if every_records else {}),
                },
                {
                    "source": "parked",
                    "status": "awaiting",
                    "records": [],
                    "attempts": 1,
                    "token": "partner-token",
                    "collect_at": at,
                    "collect_deadline": at + timedelta(hours=1),
                },
            ],
        )
        await session.commit()

    assert stored == {"answered", "parked"}
    async with session_factory() as session:
        rows = {
            row.source: row
            for row in await session.scalars(
                select(SourceResult).where(SourceResult.verification_id == verification_id)
            )
        }
    answered, raced, parked, untouched = (
        rows[name] for name in ("answered", "raced", "parked", "untouched")
    )
    assert (answered.status, answered.records, answered.attempts) == ("ok", [record], 2)
    assert answered.token is None  # not its columns
    assert answered.collect_at is None
    assert (raced.status, raced.detail, raced.attempts) == ("no_record", None, 1)
    assert (parked.status, parked.token, parked.collect_at) == ("awaiting", "partner-token", at)
    assert parked.collect_deadline == at + timedelta(hours=1)
    assert (untouched.status, untouched.attempts) == ("pending", 0)


async def test_a_collect_settles_only_an_awaiting_source(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """`was`: the same statement settles a parked source, clearing its question."""
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    async with session_factory() as session:
        verification_id = await _planned(session, ["bank", "pensions"])
        repository = VerificationRepository.from_session(session)
        parked = {"status": "awaiting", "token": "t", "collect_at": at, "collect_deadline": at}
        assert await repository.settle_sources(verification_id, [{"source": "bank", **parked}]) == {
            "bank"
        }
        collected = await repository.settle_sources(
            verification_id,
            [
                {"source": "bank", "status": "ok", "records": []},
                {"source": "pensions", "status": "ok", "records": []},
            ],
            was="awaiting",
        )
        await session.commit()
        bank = await session.scalar(
            select(SourceResult).where(
                SourceResult.verification_id == verification_id, SourceResult.source == "bank"
            )
        )
    assert collected == {"bank"}  # pensions is pending, not awaiting: untouched
    assert bank is not None
    assert (bank.status, bank.token, bank.collect_at, bank.collect_deadline) == (
        "ok",
        None,
        None,
        None,
    )


_PROBE = bindparam("_probe", type_=Integer) * 2
"""An expression read by the settle (built once, as the run's near-relative check is)."""


async def test_the_last_settle_reads_the_count_and_its_expressions_stored_or_not(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """`count_awaiting_and_settle` answers as `count_awaiting_reading` then `settle_sources`
    would, whether it stores some sources or none (every one stored already)."""
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    async with session_factory() as session:
        verification_id = await _planned(session, ["bank", "pensions", "vehicles"])
        repository = VerificationRepository.from_session(session)
        parked = {"status": "awaiting", "token": "t", "collect_at": at, "collect_deadline": at}
        assert await repository.settle_sources(verification_id, [{"source": "bank", **parked}])
        assert await repository.count_awaiting(verification_id, 1) == 1
        answers = [
            {"source": "pensions", "status": "ok", "records": [], "attempts": 1},
            {"source": "vehicles", "status": "no_record", "records": [], "attempts": 1},
        ]

        first = await repository.count_awaiting_and_settle(
            verification_id, (_PROBE,), answers, parameters={"_probe": 21}
        )
        again = await repository.count_awaiting_and_settle(
            verification_id, (_PROBE,), answers, parameters={"_probe": 4}
        )
        await session.commit()

    assert first == (1, (42,), {"pensions", "vehicles"})
    assert again == (1, (8,), set())
