"""Parked sources over real HTTP: a bank that answers after five minutes.

The sandbox bank takes 300 s to process an inquiry; hedui submits it, parks the source as
`awaiting` and frees the run. The sandbox clock then moves on five minutes, and a collect
pass (called here with hedui's clock moved on too, instead of sleeping) finishes the
verification with the bank's answer. The service's own collect schedule is off, so only
the passes the tests make collect anything.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from schemas.connector import Pause
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.config import Settings
from service.jobs.collect import DEADLINE_DETAIL, FAILING_DETAIL, Collector
from service.models import Report, SourceResult, Verification
from service.runtime import Runtime, build_runtime
from tests.conftest import CLIENT_TLS, LiveService, _free_port, running_service
from tests.factories import make_id_number, member, verification_body

FIVE_MINUTES_MS = 300_000
DEADLINE_S = 3600.0
RICH = [{"bank": "中国工商银行", "account": "6222020200112233", "balance": 1_000_000}]


@dataclass
class Parked:
    live: LiveService
    client: httpx.AsyncClient
    runtime: Runtime
    """Another process's runtime on the same database: it runs the collect passes."""


@pytest.fixture(scope="module")
async def parked(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Parked]:
    settings = Settings(
        database_url=fresh_database_url,
        port=_free_port(),
        sandbox="on",
        sandbox_data=Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        connector_timeout_s=5.0,
        collect_sweep_s=0,  # the tests collect, with their own clock
        connectors={
            "bank": {
                "park_after_s": 0.2,
                "collect_interval_s": 30,
                "collect_deadline_s": DEADLINE_S,
            }
        },
    )
    async with running_service(settings) as live, build_runtime(settings) as runtime:
        async with runtime.session_factory() as session:
            _, token = await create_api_key(session, role=Role.caseworker, region="53")
            await session.commit()
        async with httpx.AsyncClient(
            base_url=live.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            verify=CLIENT_TLS,
        ) as client:
            yield Parked(live, client, runtime)
            await client.delete("/sandbox/faults/bank")
            await client.delete("/sandbox/clock")


async def _submit_to_a_slow_bank(parked: Parked) -> dict[str, Any]:
    """A one-person household with a large bank balance, the bank taking five minutes;
    the verification as `Prefer: wait` answered it."""
    client = parked.client
    person = make_id_number("530103")
    seeded = await client.post("/sandbox/people", json={"id_number": person, "bank_accounts": RICH})
    assert seeded.status_code == 200, seeded.text
    fault = await client.put(
        "/sandbox/faults/bank", json={"mode": "ok", "processing_ms": FIVE_MINUTES_MS}
    )
    assert fault.status_code == 200, fault.text
    await client.delete("/sandbox/queries")
    body = verification_body([member(person)], region_code="530103")
    response = await client.post("/v1/verifications", json=body, headers={"Prefer": "wait=20"})
    # The synchronous part is over: the wait answers with the running verification at once,
    # not when the bank answers (nor when the 20 s run out).
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    return response.json()


async def _verification(parked: Parked, verification_id: str) -> dict[str, Any]:
    response = await parked.client.get(f"/v1/verifications/{verification_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _sources(verification: dict[str, Any]) -> dict[str, str]:
    return {source["source"]: source["status"] for source in verification["sources"]}


async def _row(parked: Parked, verification_id: str) -> tuple[Verification, SourceResult, int]:
    async with parked.runtime.session_factory() as session:
        verification = await session.get(Verification, verification_id)
        bank = await session.scalar(
            select(SourceResult).where(
                SourceResult.verification_id == verification_id, SourceResult.source == "bank"
            )
        )
        reports = await session.scalar(
            select(func.count())
            .select_from(Report)
            .where(Report.verification_id == verification_id)
        )
    assert verification is not None
    assert bank is not None
    return verification, bank, int(reports or 0)


async def test_a_bank_answering_after_five_minutes_completes_the_verification(
    parked: Parked, capfd: pytest.CaptureFixture[str]
) -> None:
    started = datetime.now(UTC)
    accepted = await _submit_to_a_slow_bank(parked)
    verification_id = accepted["id"]
    assert datetime.now(UTC) - started < timedelta(seconds=15)

    waiting = await _verification(parked, verification_id)
    assert waiting["status"] == "running"
    statuses = _sources(waiting)
    assert statuses.pop("bank") == "awaiting"
    assert set(statuses.values()) <= {"ok", "no_record"}
    row, bank, reports = await _row(parked, verification_id)
    assert (row.lease_owner, row.lease_expires_at, row.awaiting) == (None, None, 1)
    assert bank.token_sealed is not None
    assert bank.token.startswith("inq_")
    assert bank.token not in bank.token_sealed  # sealed, not stored in clear
    assert reports == 0

    collector = parked.runtime.collector
    # Nothing is due yet by hedui's clock: the bank is not asked.
    assert await collector.collect_due(now=datetime.now(UTC)) == 0

    moved = await parked.client.post("/sandbox/clock", json={"advance_s": 300})
    assert moved.status_code == 200
    later = datetime.now(UTC) + timedelta(minutes=6)
    capfd.readouterr()
    assert await collector.collect_due(now=later) == 1
    # The collect that finished it says so in one line, as a run does (`run_finished`).
    logged = capfd.readouterr().err.splitlines()
    [finished] = [line for line in logged if "collect_finished" in line]
    assert verification_id in finished
    assert "status=completed" in finished
    assert "'ok': 1" in finished  # the bank's late answer counted with the run's five

    done = await _verification(parked, verification_id)
    assert done["status"] == "completed", done
    assert _sources(done)["bank"] == "ok"
    report = await parked.client.get(f"/v1/verifications/{verification_id}/report")
    assert report.status_code == 200, report.text
    # The bank's balance is what makes this household ineligible.
    assert report.json()["recommendation"] == "ineligible", report.json()["findings"]
    assert {s["source"]: s["status"] for s in report.json()["sources"]}["bank"] == "ok"
    row, bank, reports = await _row(parked, verification_id)
    assert (row.awaiting, bank.token_sealed, bank.collect_at, bank.collects) == (0, None, None, 1)

    # A later pass finds nothing, and the report stays the one built.
    assert await collector.collect_due(now=later + timedelta(hours=1)) == 0
    assert (await _row(parked, verification_id))[2] == 1
    queries = await parked.client.get("/sandbox/queries")
    assert queries.json()["bank"] == 1  # submitted once, however often it was polled


async def test_no_answer_before_the_partners_deadline_is_timeout_and_review(
    parked: Parked,
) -> None:
    accepted = await _submit_to_a_slow_bank(parked)
    collector = parked.runtime.collector
    now = datetime.now(UTC)

    # Collected while still processing: asked again later, the wait growing.
    assert await collector.collect_due(now=now + timedelta(seconds=31)) == 1
    _, bank, _ = await _row(parked, accepted["id"])
    assert bank.status == "awaiting"
    assert bank.collects == 1
    assert bank.collect_at is not None
    assert bank.collect_at >= now + timedelta(seconds=61)

    assert await collector.collect_due(now=now + timedelta(seconds=DEADLINE_S + 1)) == 1
    done = await _verification(parked, accepted["id"])
    assert done["status"] == "completed"
    assert done["recommendation"] == "review"
    bank_state = next(s for s in done["sources"] if s["source"] == "bank")
    assert (bank_state["status"], bank_state["detail"]) == ("timeout", DEADLINE_DETAIL)


async def test_collects_near_the_partners_deadline_end_by_it(parked: Parked) -> None:
    """A collect's budget is what is left before the partner's deadline, and none starts
    with less than `MIN_COLLECT_S` left: the source settles by the deadline, never a
    source budget or a collect interval past it."""
    accepted = await _submit_to_a_slow_bank(parked)
    _, bank, _ = await _row(parked, accepted["id"])
    assert bank.collect_deadline is not None
    deadline = bank.collect_deadline
    hang = await parked.client.put("/sandbox/faults/bank", json={"mode": "hang"})
    assert hang.status_code == 200, hang.text
    collector = parked.runtime.collector

    started = time.monotonic()
    assert await collector.collect_due(now=deadline - timedelta(seconds=2)) == 1
    assert time.monotonic() - started < 4  # 2 s left: not the source's 5 s budget

    _, bank, _ = await _row(parked, accepted["id"])
    assert bank.status == "awaiting"
    # The last collect starts with a budget still left (half of the 2 s), not at the end.
    assert bank.collect_at == deadline - timedelta(seconds=1)

    await parked.client.delete("/sandbox/traffic")
    assert await collector.collect_due(now=deadline - timedelta(seconds=0.5)) == 1
    traffic = await parked.client.get("/sandbox/traffic")
    assert traffic.json().get("bank", {}).get("calls", 0) == 0  # too late to ask: unasked
    done = await _verification(parked, accepted["id"])
    assert done["recommendation"] == "review"
    bank_state = next(s for s in done["sources"] if s["source"] == "bank")
    assert (bank_state["status"], bank_state["detail"]) == ("timeout", DEADLINE_DETAIL)


async def test_two_collectors_at_once_collect_a_source_once(parked: Parked) -> None:
    accepted = await _submit_to_a_slow_bank(parked)
    await parked.client.post("/sandbox/clock", json={"advance_s": 300})
    await parked.client.delete("/sandbox/traffic")
    runtime = parked.runtime
    later = datetime.now(UTC) + timedelta(minutes=6)
    one, other = (Collector(runtime.workflow, runtime.fetcher) for _ in range(2))

    collected = await asyncio.gather(one.collect_due(now=later), other.collect_due(now=later))

    assert sorted(collected) == [0, 1]
    traffic = await parked.client.get("/sandbox/traffic")
    assert traffic.json()["bank"]["calls"] == 1
    done = await _verification(parked, accepted["id"])
    assert done["status"] == "completed"
    assert (await _row(parked, accepted["id"]))[2] == 1


async def test_a_collect_failing_on_our_side_stops_after_the_cap(parked: Parked) -> None:
    accepted = await _submit_to_a_slow_bank(parked)
    runtime = parked.runtime
    # As if five collects in a row had crashed (each claim counts one until it ends well).
    async with runtime.session_factory() as session:
        await session.execute(
            update(SourceResult)
            .where(SourceResult.verification_id == accepted["id"], SourceResult.source == "bank")
            .values(collect_failures=runtime.settings.collect_max_failures)
        )
        await session.commit()
    await parked.client.delete("/sandbox/traffic")

    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await runtime.collector.collect_due(now=later) == 1

    done = await _verification(parked, accepted["id"])
    assert done["status"] == "completed"
    assert done["recommendation"] == "review"
    bank_state = next(s for s in done["sources"] if s["source"] == "bank")
    assert bank_state["status"] == "error"
    assert bank_state["detail"] == FAILING_DETAIL.format(failures=5)
    traffic = await parked.client.get("/sandbox/traffic")
    assert traffic.json()["bank"]["calls"] == 0  # given up without asking the bank again


async def test_collects_while_the_bank_is_paused_are_paused_not_counted_and_do_not_back_off(
    parked: Parked, capfd: pytest.CaptureFixture[str]
) -> None:
    """Paused, the bank is not asked: each collect logs `source_collect_paused`, is not
    counted and comes back one `collect_interval_s` (30 s) later; resumed, the first
    collect asks the bank, and the wait after it is the first interval, not one grown
    with every refused collect."""
    accepted = await _submit_to_a_slow_bank(parked)
    health = parked.runtime.health  # the collecting process's view of the pause
    now = datetime.now(UTC)
    health.set_pause("bank", Pause(paused_by="ops", reason="maintenance", paused_at=now), now)
    at = now + timedelta(seconds=31)
    try:
        capfd.readouterr()
        for _ in range(4):
            assert await parked.runtime.collector.collect_due(now=at) == 1
            _, bank, _ = await _row(parked, accepted["id"])
            assert (bank.status, bank.collects) == ("awaiting", 0)
            assert bank.collect_at == at + timedelta(seconds=30)
            at = bank.collect_at
        logged = capfd.readouterr().err
        assert logged.count("source_collect_paused") == 4
        assert "source_collected" not in logged
    finally:
        health.set_pause("bank", None, datetime.now(UTC))

    assert await parked.runtime.collector.collect_due(now=at) == 1
    _, bank, _ = await _row(parked, accepted["id"])
    assert (bank.status, bank.collects) == ("awaiting", 1)  # still processing at the bank
    assert bank.collect_at == at + timedelta(seconds=30)
    assert "source_collected" in capfd.readouterr().err
