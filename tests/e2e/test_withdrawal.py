"""Withdrawing a verification over real HTTP, with the sandbox agencies as partners.

A household withdraws its consent (or the caseworker the application) while partners are
being asked, while the bank's answer is parked, or after the report: the partner is asked
no more (the sandbox counts every call it receives), nothing that arrives later is stored,
the raw partner records are gone, and a report made before stays with its decision.

The service's own collect schedule is off: only the passes the tests make collect anything.
A second runtime on the same database stands for another process (a worker).
"""

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from schemas.verification import VerificationCreate
from service.auth.principal import Principal, Role
from service.auth.service import create_api_key
from service.config import Settings
from service.connector.wiring import source_plan
from service.models import AuditEvent, OutboxEvent, Report, SourceResult, Verification, Webhook
from service.models.base import new_id, utcnow
from service.runtime import Runtime, build_runtime
from service.verification.repository import VerificationRepository
from service.verification.service import verification as verification_service
from tests.conftest import CLIENT_TLS, LiveService, _free_port, running_service
from tests.factories import make_id_number, member, verification_body

COUNTY = "530102"
TOWN_A = "530102021"
TOWN_B = "530102022"
FIVE_MINUTES_MS = 300_000
RICH = [{"bank": "中国工商银行", "account": "6222020200112233", "balance": 1_000_000}]
WITHDRAWN = "/problems/verification-withdrawn"


@dataclass
class World:
    live: LiveService
    runtime: Runtime
    """Another process's runtime on the same database (a worker): runs, collects."""
    worker: Runtime
    """A worker whose leases are short: its heartbeat notices a withdrawal quickly."""
    caseworker: httpx.AsyncClient
    caseworker_key: Principal
    approver: httpx.AsyncClient
    town_a: httpx.AsyncClient
    town_b: httpx.AsyncClient
    sandbox: httpx.AsyncClient


async def _client(
    runtime: Runtime, base_url: str, role: Role, region: str, name: str
) -> tuple[httpx.AsyncClient, Principal]:
    async with runtime.session_factory() as session:
        key, token = await create_api_key(session, role=role, region=region, name=name)
        await session.commit()
    client = httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )
    return client, Principal(key.id, name, role, region)


@pytest.fixture(scope="module")
async def world(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    settings = Settings(
        database_url=fresh_database_url,
        port=_free_port(),
        sandbox="on",
        sandbox_data=Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        # A hanging partner holds its call for the whole budget: long enough to withdraw.
        connector_timeout_s=30.0,
        collect_sweep_s=0,
        connectors={
            "bank": {"park_after_s": 0.2, "collect_interval_s": 30, "collect_deadline_s": 3600}
        },
    )
    short_lease = settings.model_copy(update={"run_lease_s": 0.6})
    async with (
        running_service(settings) as live,
        build_runtime(settings, runs_here=False) as runtime,
        build_runtime(short_lease, runs_here=False) as worker,
    ):
        base = live.base_url
        caseworker, caseworker_key = await _client(runtime, base, Role.caseworker, "53", "李娜")
        approver, _ = await _client(runtime, base, Role.approver, "53", "王芳")
        town_a, _ = await _client(runtime, base, Role.caseworker, TOWN_A, "甲镇")
        town_b, _ = await _client(runtime, base, Role.caseworker, TOWN_B, "乙镇")
        async with httpx.AsyncClient(base_url=base, timeout=30, verify=CLIENT_TLS) as sandbox:
            yield World(
                live, runtime, worker, caseworker, caseworker_key, approver, town_a, town_b, sandbox
            )
        for client in (caseworker, approver, town_a, town_b):
            await client.aclose()


@pytest.fixture(autouse=True)
async def _healthy_partners(world: World) -> AsyncIterator[None]:
    await world.sandbox.delete("/sandbox/faults")
    await world.sandbox.delete("/sandbox/clock")
    yield
    await world.sandbox.delete("/sandbox/faults")
    await world.sandbox.delete("/sandbox/clock")


async def _person(world: World, **records: Any) -> str:
    person = make_id_number(COUNTY)
    seeded = await world.sandbox.post("/sandbox/people", json={"id_number": person, **records})
    assert seeded.status_code == 200, seeded.text
    return person


async def _counts(world: World) -> tuple[dict[str, int], dict[str, int]]:
    """Household queries and all calls (queries, polls) each agency received."""
    queries = (await world.sandbox.get("/sandbox/queries")).json()
    traffic = (await world.sandbox.get("/sandbox/traffic")).json()
    return queries, {source: seen["calls"] for source, seen in traffic.items()}


async def _reset_counts(world: World) -> None:
    await world.sandbox.delete("/sandbox/queries")
    await world.sandbox.delete("/sandbox/traffic")


async def _until(check: Any, what: str, *, tries: int = 300) -> Any:
    """Poll `check()` (bounded) until it returns something truthy."""
    for _ in range(tries):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


def _sources(verification: dict[str, Any]) -> dict[str, str]:
    return {source["source"]: source["status"] for source in verification["sources"]}


async def _accepted(world: World, person: str, *, prefer: str | None = None) -> str:
    """A caseworker's one-person verification, accepted (202): its id."""
    accepted = await world.caseworker.post(
        "/v1/verifications",
        json=verification_body([member(person)], as_of=None),
        headers={"Prefer": prefer} if prefer else None,
    )
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["id"])


async def _statuses(world: World, verification_id: str) -> dict[str, str]:
    """Each source's status, as the caseworker reads the verification now."""
    state = (await world.caseworker.get(f"/v1/verifications/{verification_id}")).json()
    return _sources(state)


async def _metric(world: World, line_start: str) -> float:
    text = (await world.sandbox.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{line_start} not on /metrics")


async def _rows(world: World, verification_id: str) -> tuple[Verification, list[SourceResult], int]:
    async with world.runtime.session_factory() as session:
        verification = await session.get(Verification, verification_id)
        sources = list(
            await session.scalars(
                select(SourceResult).where(SourceResult.verification_id == verification_id)
            )
        )
        reports = await session.scalar(
            select(func.count())
            .select_from(Report)
            .where(Report.verification_id == verification_id)
        )
    assert verification is not None
    return verification, sources, int(reports or 0)


async def _audited(world: World, verification_id: str) -> list[tuple[str, str]]:
    async with world.runtime.session_factory() as session:
        rows = await session.execute(
            select(AuditEvent.actor_name, AuditEvent.outcome)
            .where(
                AuditEvent.action == "verification.withdraw",
                AuditEvent.object_id == verification_id,
            )
            .order_by(AuditEvent.id)
        )
    return [(row[0], row[1]) for row in rows]


async def _completed(world: World, client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/v1/verifications", json=body, headers={"Prefer": "wait=20"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    return str(response.json()["id"])


async def _stored_unclaimed(world: World, person: str) -> str:
    """A verification stored with its job but not started, as an API process in queue
    mode leaves it for the workers."""
    runtime = world.runtime
    body = VerificationCreate.model_validate(verification_body([member(person)], as_of=None))
    async with runtime.session_factory() as session:
        verification, created = await verification_service.prepare(
            session,
            principal=world.caseworker_key,
            body=body,
            catalog=runtime.catalog,
            sources=source_plan(runtime.registry),
            today=runtime.settings.today(),
        )
        assert created
        await verification_service.store(session, verification)
        await session.commit()
    return verification.id


async def test_withdrawing_while_a_partner_hangs_stops_asking_it(world: World) -> None:
    """The run in this process is cancelled: the hanging call is abandoned, the partner is
    never asked again, no report is made, the records already fetched are purged."""
    person = await _person(world, pension={"status": "receiving", "monthly_amount": 300})
    await world.sandbox.put("/sandbox/faults/pensions", json={"mode": "hang"})
    await _reset_counts(world)
    verification_id = await _accepted(world, person)

    async def only_pensions_left() -> bool:
        statuses = await _statuses(world, verification_id)
        return statuses.pop("pensions") == "pending" and "pending" not in statuses.values()

    await _until(only_pensions_left, "every partner but the hanging one answered")
    assert (await _counts(world))[0]["pensions"] == 1

    response = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert response.status_code == 200, response.text
    withdrawn = response.json()
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["recommendation"] is None
    assert _sources(withdrawn)["pensions"] == "withdrawn"
    assert withdrawn["withdrawal"]["status_before"] == "running"
    assert withdrawn["withdrawal"]["withdrawn_by"] == "李娜"
    assert withdrawn["withdrawal"]["reason"] is None

    # The run of this process has ended, its call to the partner abandoned.
    async def stopped() -> bool:
        runs = await _metric(world, "hedui_verification_runs_in_flight")
        calls = await _metric(world, 'hedui_connector_in_flight{connector="pensions"}')
        return runs == 0 and calls == 0

    await _until(stopped, "the run stopped")
    queries, calls = await _counts(world)
    assert (queries["pensions"], calls["pensions"]) == (1, 1)

    report = await world.caseworker.get(f"/v1/verifications/{verification_id}/report")
    assert report.status_code == 409
    assert report.json()["type"] == WITHDRAWN
    row, sources, reports = await _rows(world, verification_id)
    assert reports == 0
    assert row.status == "withdrawn"
    assert (row.lease_owner, row.awaiting) == (None, 0)
    assert row.records_purged_at is not None
    assert all(source.records == [] for source in sources)

    # A job for it (queue mode), a sweep, a resumed run: none starts it again.
    assert await world.runtime.workflow.run(verification_id) is None
    async with world.runtime.session_factory() as session:
        due = await VerificationRepository.from_session(session).due_ids(
            utcnow() + timedelta(hours=1),
            unclaimed_before=utcnow() + timedelta(hours=1),
            limit=1000,
        )
    assert verification_id not in due
    assert (await _counts(world))[1]["pensions"] == 1
    assert await _audited(world, verification_id) == [("李娜", "ok")]


async def test_a_run_in_another_process_stops_at_its_next_heartbeat(world: World) -> None:
    """A worker runs the verification; the withdrawal reaches it through the database: its
    lease is not renewed, the run ends without asking anyone again or storing anything."""
    person = await _person(world)
    await world.sandbox.put("/sandbox/faults/pensions", json={"mode": "hang"})
    verification_id = await _stored_unclaimed(world, person)
    await _reset_counts(world)
    run = asyncio.create_task(world.worker.workflow.run(verification_id))

    async def asked() -> bool:
        return (await _counts(world))[0]["pensions"] == 1

    await _until(asked, "the hanging partner was asked")
    response = await world.caseworker.post(
        f"/v1/verifications/{verification_id}/withdraw",
        json={"reason": "申请人撤回申请"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["withdrawal"]["reason"] == "申请人撤回申请"

    assert await asyncio.wait_for(run, timeout=30) is None
    await world.sandbox.delete("/sandbox/faults/pensions")
    assert (await _counts(world))[1]["pensions"] == 1
    row, sources, reports = await _rows(world, verification_id)
    assert (row.status, reports) == ("withdrawn", 0)
    assert {source.source: source.status for source in sources}["pensions"] == "withdrawn"


async def test_a_queued_verification_withdrawn_is_never_run(world: World) -> None:
    person = await _person(world)
    verification_id = await _stored_unclaimed(world, person)
    await _reset_counts(world)
    response = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert response.status_code == 200, response.text
    assert response.json()["withdrawal"]["status_before"] == "queued"
    assert set(_sources(response.json()).values()) == {"withdrawn"}

    # What a worker does with its job: nothing.
    assert await world.worker.workflow.run(verification_id) is None
    queries, calls = await _counts(world)
    assert sum(queries.values()) == sum(calls.values()) == 0


async def test_withdrawing_stops_collecting_a_parked_bank_answer(world: World) -> None:
    person = await _person(world, bank_accounts=RICH)
    await world.sandbox.put(
        "/sandbox/faults/bank", json={"mode": "ok", "processing_ms": FIVE_MINUTES_MS}
    )
    await _reset_counts(world)
    verification_id = await _accepted(world, person, prefer="wait=20")
    assert (await _statuses(world, verification_id))["bank"] == "awaiting"
    submitted = (await _counts(world))[1]["bank"]

    response = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert response.status_code == 200, response.text
    assert _sources(response.json())["bank"] == "withdrawn"
    row, sources, _ = await _rows(world, verification_id)
    bank = next(source for source in sources if source.source == "bank")
    assert (bank.token_sealed, bank.collect_at, row.awaiting) == (None, None, 0)

    # The bank has its answer now; nobody collects it.
    await world.sandbox.post("/sandbox/clock", json={"advance_s": 300})
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert await world.runtime.collector.collect_due(now=later) == 0
    assert await world.runtime.collector.collect_due(now=later + timedelta(hours=2)) == 0
    assert (await _counts(world))[1]["bank"] == submitted
    _, _, reports = await _rows(world, verification_id)
    assert reports == 0


async def test_a_collect_under_way_when_withdrawn_stores_nothing(world: World) -> None:
    """A collector that claimed the parked source just before the withdrawal gets the
    bank's answer after it: the answer is not stored, and no report is made."""
    person = await _person(world, bank_accounts=RICH)
    await world.sandbox.put(
        "/sandbox/faults/bank", json={"mode": "ok", "processing_ms": FIVE_MINUTES_MS}
    )
    verification_id = await _accepted(world, person, prefer="wait=20")
    await world.sandbox.post("/sandbox/clock", json={"advance_s": 300})
    collector = world.runtime.collector
    later = datetime.now(UTC) + timedelta(minutes=6)
    due = await collector._claim(verification_id, "bank", later)
    assert due is not None

    response = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert response.status_code == 200, response.text
    await collector._collect(due, later)  # the bank answers DONE now

    row, sources, reports = await _rows(world, verification_id)
    assert (row.status, reports) == ("withdrawn", 0)
    bank = next(source for source in sources if source.source == "bank")
    assert (bank.status, bank.records) == ("withdrawn", [])


async def test_withdrawing_a_completed_verification_keeps_its_report_and_decision(
    world: World,
) -> None:
    person = await _person(world, pension={"status": "receiving", "monthly_amount": 300})
    verification_id = await _completed(
        world, world.caseworker, verification_body([member(person)], as_of=None)
    )
    report = (await world.caseworker.get(f"/v1/verifications/{verification_id}/report")).json()
    decided = await world.approver.post(
        f"/v1/verifications/{verification_id}/decision",
        json={
            "decision": "approve",
            "reason": "核对无误",
            # A review report computes no benefit: the approver states it.
            **({} if report.get("benefit") else {"monthly_benefit": "500.00"}),
        },
    )
    assert decided.status_code == 201, decided.text
    _, sources, _ = await _rows(world, verification_id)
    assert any(source.records for source in sources)  # the pension record, until now

    response = await world.caseworker.post(
        f"/v1/verifications/{verification_id}/withdraw",
        json={"reason": "户主书面撤回授权"},
    )
    assert response.status_code == 200, response.text
    withdrawn = response.json()
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["withdrawal"]["status_before"] == "completed"
    assert withdrawn["recommendation"] == report["recommendation"]
    assert [d["decision"] for d in withdrawn["decisions"]] == ["approve"]
    assert set(_sources(withdrawn).values()) <= {"ok", "no_record"}

    # The report as it was stored, for accountability; the partner records are gone.
    kept = await world.approver.get(f"/v1/verifications/{verification_id}/report")
    assert kept.status_code == 200, kept.text
    assert kept.json()["report_hash"] == report["report_hash"]
    # Asked for in English, it cannot be rendered anew from facts that are gone: it comes
    # as stored, and says in which language (it was a 409 for `en`).
    english = await world.approver.get(
        f"/v1/verifications/{verification_id}/report", headers={"Accept-Language": "en"}
    )
    assert english.status_code == 200, english.text
    assert english.headers["content-language"] == "zh"
    assert english.json() == kept.json()
    row, sources, reports = await _rows(world, verification_id)
    assert reports == 1
    assert row.records_purged_at is not None
    assert all(source.records == [] for source in sources)

    rescore = await world.approver.post(f"/v1/verifications/{verification_id}/rescore", json={})
    assert rescore.status_code == 409
    assert rescore.json()["type"] == WITHDRAWN
    again = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert again.status_code == 409
    assert again.json()["type"] == WITHDRAWN
    assert again.headers["content-type"].startswith("application/problem+json")
    assert await _audited(world, verification_id) == [("李娜", "ok"), ("李娜", "409")]


async def test_a_withdrawn_verification_cannot_be_decided(world: World) -> None:
    person = await _person(world)
    verification_id = await _completed(
        world, world.caseworker, verification_body([member(person)], as_of=None)
    )
    withdrawn = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    decided = await world.approver.post(
        f"/v1/verifications/{verification_id}/decision",
        json={"decision": "approve", "reason": "核对无误"},
    )
    assert decided.status_code == 409
    assert decided.json()["type"] == WITHDRAWN
    state = (await world.approver.get(f"/v1/verifications/{verification_id}")).json()
    assert state["decisions"] == []


async def test_another_township_cannot_withdraw(world: World) -> None:
    """Township B's caseworker meets a 404, exactly as for an id that exists nowhere; the
    household is untouched and township A's caseworker withdraws it."""
    person = await _person(world)
    verification_id = await _completed(
        world,
        world.town_a,
        verification_body([member(person)], as_of=None, township_code=TOWN_A),
    )
    refused = await world.town_b.post(f"/v1/verifications/{verification_id}/withdraw")
    nowhere = await world.town_b.post(f"/v1/verifications/{new_id()}/withdraw")
    assert refused.status_code == nowhere.status_code == 404
    assert refused.json()["detail"] == nowhere.json()["detail"]
    row, _, _ = await _rows(world, verification_id)
    assert row.status == "completed"
    assert await _audited(world, verification_id) == [("乙镇", "404")]

    approver = await world.approver.post(f"/v1/verifications/{verification_id}/withdraw")
    assert approver.status_code == 403
    accepted = await world.town_a.post(f"/v1/verifications/{verification_id}/withdraw")
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"reason": "x" * 501}, ["body", "reason"]),
        ({"reason": ""}, ["body", "reason"]),
        ({"reason": "身份证 530102199001011231 本人撤回"}, ["body", "reason"]),
        ({"reason": "ok", "by": "someone"}, ["body", "by"]),
    ],
    ids=["too-long", "empty", "id-number", "unknown-field"],
)
async def test_a_bad_body_is_refused_and_changes_nothing(
    world: World, body: dict[str, Any], loc: list[str]
) -> None:
    person = await _person(world)
    verification_id = await _completed(
        world, world.caseworker, verification_body([member(person)], as_of=None)
    )
    response = await world.caseworker.post(
        f"/v1/verifications/{verification_id}/withdraw", json=body
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc
    assert "530102199001011231" not in response.text
    row, _, _ = await _rows(world, verification_id)
    assert (row.status, row.records_purged_at) == ("completed", None)


async def test_webhooks_hear_of_the_withdrawal(world: World) -> None:
    """`verification.withdrawn` goes through the outbox with ids and codes only."""
    async with world.runtime.session_factory() as session:
        hook = Webhook(
            id=new_id(),
            url="http://127.0.0.1:9/hook",  # nothing listens there: deliveries just fail
            events=["verification.withdrawn"],
            secret="s" * 32,
            region_prefix=COUNTY,
            active=True,
            created_by=world.caseworker_key.key_id,
            created_at=utcnow(),
        )
        session.add(hook)
        await session.commit()
    person = await _person(world)
    verification_id = await _completed(
        world, world.caseworker, verification_body([member(person)], as_of=None)
    )
    response = await world.caseworker.post(
        f"/v1/verifications/{verification_id}/withdraw", json={"reason": "撤回授权"}
    )
    assert response.status_code == 200, response.text
    async with world.runtime.session_factory() as session:
        hook_row = await session.get(Webhook, hook.id)
        assert hook_row is not None
        hook_row.active = False  # later tests' withdrawals need no receiver
        events = list(
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.type == "verification.withdrawn")
            )
        )
        await session.commit()
    [event] = [e for e in events if e.payload["data"]["verification_id"] == verification_id]
    data = event.payload["data"]
    assert data["status_before"] == "completed"
    assert data["region_code"] == COUNTY
    text = str(event.payload)
    assert person not in text
    assert "撤回授权" not in text  # the reason is not sent
    assert not re.search(r"[0-9]{17}[0-9X]", text)


def _run_tasks(verification_id: str) -> list[asyncio.Task[Any]]:
    """The unfinished tasks of a run of the verification: its heartbeat, the task that
    verifies, its partner calls and the one recording their answers."""
    found = []
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        if task.done() or frame is None or task is asyncio.current_task():
            continue
        seen = frame.f_locals.get("verification_id")
        claimed = frame.f_locals.get("claimed")
        if verification_id in (seen, getattr(claimed, "verification_id", None)):
            found.append(task)
    return found


async def test_withdrawing_while_answers_arrive_leaves_no_task_and_stores_nothing(
    world: World,
) -> None:
    """Two partners are slow to answer (one in flight, one hanging) while the others
    settle: the withdrawal cancels the run of this process, which ends with every task it
    started; the answers still arriving are not stored, no records remain, no report."""
    person = await _person(
        world,
        pension={"status": "receiving", "monthly_amount": 300},
        vehicles=[{"plate": "云A1B234", "type": "car", "registered_on": "2025-01-01"}],
    )
    await world.sandbox.put("/sandbox/faults/pensions", json={"mode": "slow", "latency_ms": 700})
    await world.sandbox.put("/sandbox/faults/vehicles", json={"mode": "hang"})
    verification_id = await _accepted(world, person)

    async def others_answered() -> bool:
        statuses = await _statuses(world, verification_id)
        return [s for s, status in statuses.items() if status == "pending"] == [
            s for s in statuses if s in ("pensions", "vehicles")
        ]

    await _until(others_answered, "every partner but the slow ones answered")
    [run] = [t for t in asyncio.all_tasks() if t.get_name() == f"verification:{verification_id}"]
    assert _run_tasks(verification_id)

    response = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert response.status_code == 200, response.text
    await asyncio.wait_for(asyncio.wait([run]), timeout=5)
    assert _run_tasks(verification_id) == []

    await asyncio.sleep(1.0)  # the slow answer has arrived by now, to nobody
    row, sources, reports = await _rows(world, verification_id)
    assert (row.status, reports) == ("withdrawn", 0)
    statuses = {source.source: source.status for source in sources}
    assert (statuses["pensions"], statuses["vehicles"]) == ("withdrawn", "withdrawn")
    assert all(source.records == [] for source in sources)
    assert row.records_purged_at is not None


async def test_a_run_in_another_process_stops_at_the_first_answer_after_a_withdrawal(
    world: World,
) -> None:
    """A worker whose heartbeat is far off (30 s lease): the first answer it settles after
    the withdrawal is refused by the database, and the run stops there, abandoning the
    hanging call, instead of at its next lease renewal."""
    person = await _person(world, pension={"status": "receiving", "monthly_amount": 300})
    await world.sandbox.put("/sandbox/faults/pensions", json={"mode": "slow", "latency_ms": 700})
    await world.sandbox.put("/sandbox/faults/vehicles", json={"mode": "hang"})
    verification_id = await _stored_unclaimed(world, person)
    await _reset_counts(world)
    assert world.runtime.workflow.lease.total_seconds() >= 30
    run = asyncio.create_task(world.runtime.workflow.run(verification_id))

    async def asked() -> bool:
        queries = (await _counts(world))[0]
        return queries.get("pensions") == 1 and queries.get("vehicles") == 1

    await _until(asked, "the slow and the hanging partner were asked")
    response = await world.caseworker.post(f"/v1/verifications/{verification_id}/withdraw")
    assert response.status_code == 200, response.text

    assert await asyncio.wait_for(run, timeout=5) is None
    assert _run_tasks(verification_id) == []
    row, sources, reports = await _rows(world, verification_id)
    assert (row.status, reports) == ("withdrawn", 0)
    statuses = {source.source: source.status for source in sources}
    assert (statuses["pensions"], statuses["vehicles"]) == ("withdrawn", "withdrawn")
    assert all(source.records == [] for source in sources)
