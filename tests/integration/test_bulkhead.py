"""The per-connector bulkhead over real HTTP: a hung partner fills only its own slots, and
the other sources of every verification answer while it hangs."""

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.declarative import ConnectorSpec, build_connector
from connectors.registry import load_connectors
from schemas.evidence import HouseholdQuery, MemberQuery, RequestContext
from schemas.verification import SourceStatus
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.connector.wiring import build_configs
from service.db import create_engine, create_session_factory
from service.verification.fanout import BULKHEAD_DETAIL, SourceFetcher
from tests.conftest import CLIENT_TLS, LiveService, running_service, service_settings
from tests.connectors.declarative.specs import example
from tests.factories import make_id_number, member, verification_body

HUNG_BUDGET_S = 20.0  # far longer than the others take: the hung bank answers nothing meanwhile
BANK_SLOTS = 2
CROWD = 6


async def test_a_hung_partner_fills_only_its_own_slots(
    live_service: LiveService, http: httpx.AsyncClient
) -> None:
    registry = load_connectors()
    configs = build_configs(registry, live_service.settings)
    configs["bank"] = configs["bank"].model_copy(update={"max_concurrency": 1, "timeout_s": 2.0})
    household = HouseholdQuery(
        region_code="530103",
        as_of=date(2026, 11, 20),
        members=(MemberQuery(id_number=make_id_number(birth="19660608", sequence=1), name="张三"),),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )
    assert (await http.put("/sandbox/faults/bank", json={"mode": "hang"})).status_code == 200
    others = sorted(name for name in registry.names() if name != "bank")
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        fetcher = SourceFetcher(registry, configs, client)
        holder = asyncio.create_task(fetcher.fetch("bank", household))
        await asyncio.sleep(0)  # the first bank fetch takes the only slot
        # The next one has a shorter budget, spent waiting for that slot.
        fetcher.configs = {**configs, "bank": configs["bank"].model_copy(update={"timeout_s": 0.2})}
        queued, *rest = await asyncio.gather(
            fetcher.fetch("bank", household), *(fetcher.fetch(name, household) for name in others)
        )
        held = await holder

    assert (held.status, held.detail) == (
        SourceStatus.timeout,
        "no answer within the source's time budget",
    )
    assert (queued.status, queued.detail, queued.attempts) == (
        SourceStatus.timeout,
        BULKHEAD_DETAIL,
        0,
    )
    assert sorted(o.source for o in rest) == others
    assert all(o.status in (SourceStatus.ok, SourceStatus.no_record) for o in rest)


@pytest.fixture
async def narrow_bank(
    fresh_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[LiveService, str]]:
    settings = service_settings(
        fresh_database_url,
        tmp_path / "sandbox.db",
        connectors={
            "bank": {
                "max_concurrency": BANK_SLOTS,
                "timeout_s": HUNG_BUDGET_S,
                "request_timeout_s": HUNG_BUDGET_S,
            }
        },
        # Room for the others even on a busy machine: only the bank is meant to wait.
        connector_timeout_s=30,
        verification_deadline_s=HUNG_BUDGET_S,
        # A health check of the hung bank would hold one of its two slots (the partner's
        # concurrency counts every call): only the verifications' fetches are measured here.
        health_probe_interval_s=0,
    )
    engine = create_engine(fresh_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.caseworker, region="00")
        await session.commit()
    await engine.dispose()
    async with running_service(settings) as live:
        yield live, token
        async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as plain:
            await plain.delete("/sandbox/faults/bank")


async def test_the_other_sources_answer_while_a_hung_partner_holds_every_slot(
    narrow_bank: tuple[LiveService, str],
) -> None:
    """Six verifications, a hung bank with two slots: every verification's five other
    sources are answered and stored while all six bank fetches still wait (two on the
    partner, four for a slot), so the hang costs the others nothing."""
    live, token = narrow_bank
    async with httpx.AsyncClient(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    ) as client:
        assert (await client.put("/sandbox/faults/bank", json={"mode": "hang"})).status_code == 200
        bodies = [
            verification_body(
                [member(make_id_number("530103", birth="19700303", sequence=n))],
                region_code="530103",
                reference=f"bulkhead-{n}",
            )
            for n in range(CROWD)
        ]
        accepted = await asyncio.gather(
            *(client.post("/v1/verifications", json=body) for body in bodies)
        )
        assert [answer.status_code for answer in accepted] == [202] * CROWD
        locations = [answer.headers["Location"] for answer in accepted]

        async def sources() -> list[dict[str, Any]]:
            views = await asyncio.gather(*(client.get(location) for location in locations))
            return [{s["source"]: s for s in view.json()["sources"]} for view in views]

        for _ in range(300):
            views = await sources()
            if all(
                s["status"] in ("ok", "no_record")
                for view in views
                for name, s in view.items()
                if name != "bank"
            ):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the other sources did not all answer: {views}")
        assert all(view["bank"]["status"] == "pending" for view in views)
        # Only the bulkhead's two slots reached the partner; the rest wait their turn. (The
        # two may still be taking their turns under the partner's limits: wait for them.)
        for _ in range(300):
            reached = (await client.get("/sandbox/queries")).json()["bank"]
            if reached >= BANK_SLOTS:
                break
            await asyncio.sleep(0.05)
        assert (await client.get("/sandbox/queries")).json()["bank"] == BANK_SLOTS


def _tax_version(base_url: str, number: int, max_concurrency: int) -> Any:
    spec = example("tax", f"{base_url}/sandbox")
    spec["limits"] = {"max_concurrency": max_concurrency, "timeout_s": 1.5}
    return build_connector(ConnectorSpec.model_validate(spec), str(number))


async def test_a_new_version_with_more_concurrency_gets_its_slots(
    live_service: LiveService, http: httpx.AsyncClient
) -> None:
    """The partner agrees to 8 at once where it allowed 1: the integrator enables version 2
    of the spec. A process that fetched with version 1 kept a bulkhead of one slot, and
    fetches at version 2 timed out waiting for slots the partner never limited."""
    registry = load_connectors()
    v1 = _tax_version(live_service.base_url, 1, max_concurrency=1)
    v2 = _tax_version(live_service.base_url, 2, max_concurrency=8)
    registry.set_declared({"tax": v1}, {("tax", "1"): v1, ("tax", "2"): v2})
    household = HouseholdQuery(
        region_code="530103",
        as_of=date(2026, 11, 20),
        members=(MemberQuery(id_number=make_id_number(birth="19660609", sequence=7)),),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        fetcher = SourceFetcher(registry, {}, client)
        first = await fetcher.fetch("tax", household, "1")  # a verification planned with v1
        assert first.status in (SourceStatus.ok, SourceStatus.no_record), first

        registry.set_declared({"tax": v2}, {("tax", "1"): v1, ("tax", "2"): v2})
        slow = {"mode": "slow", "latency_ms": 600}
        assert (await http.put("/sandbox/faults/tax", json=slow)).status_code == 200
        try:
            outcomes = await asyncio.gather(
                *(fetcher.fetch("tax", household, "2") for _ in range(4))
            )
        finally:
            await http.delete("/sandbox/faults/tax")
    details = [outcome.detail for outcome in outcomes]
    assert BULKHEAD_DETAIL not in details, details
    assert all(o.status in (SourceStatus.ok, SourceStatus.no_record) for o in outcomes), details


async def test_a_wait_for_a_bulkhead_slot_is_not_the_partners_latency(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """Four fetches through a bulkhead of one, against a partner answering in 300 ms: the
    last waits about 900 ms for its slot. The partner's latency is its own 300 ms or so,
    not the 1.2 s the last caller waited: queueing in hedui never makes a healthy partner
    look slow (an operator chased a "degraded" bank that was fine)."""
    settings = service_settings(
        fresh_database_url,
        tmp_path / "sandbox.db",
        connectors={"pensions": {"max_concurrency": 1}},
        health_probe_interval_s=0,
    )
    engine = create_engine(fresh_database_url)
    async with create_session_factory(engine)() as session:
        _, caseworker = await create_api_key(session, role=Role.caseworker, region="00")
        _, operator = await create_api_key(session, role=Role.operator, region="00")
        await session.commit()
    await engine.dispose()
    async with (
        running_service(settings) as live,
        httpx.AsyncClient(base_url=live.base_url, timeout=30, verify=CLIENT_TLS) as client,
    ):
        slow = {"mode": "slow", "latency_ms": 300}
        assert (await client.put("/sandbox/faults/pensions", json=slow)).status_code == 200
        bodies = [
            verification_body(
                [member(make_id_number("530103", birth="19700404", sequence=n))],
                region_code="530103",
                reference=f"queued-{n}",
            )
            for n in range(4)
        ]
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/verifications",
                    json=body,
                    headers={"Authorization": f"Bearer {caseworker}", "Prefer": "wait=20"},
                )
                for body in bodies
            )
        )
        assert [answer.status_code for answer in answers] == [200] * 4
        durations = sorted(
            next(s["duration_ms"] for s in answer.json()["sources"] if s["source"] == "pensions")
            for answer in answers
        )
        assert durations[-1] >= 900  # the last one did wait for the slot
        health = await client.get(
            "/v1/connectors/pensions/health", headers={"Authorization": f"Bearer {operator}"}
        )
        latency = health.json()["latency"]
        assert latency["p95_ms"] is not None
        assert latency["p95_ms"] < 800, latency  # the partner's own time, not the queue's
