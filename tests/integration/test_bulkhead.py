"""The per-connector bulkhead over real HTTP: a hung partner fills only its own slots."""

import asyncio
from datetime import date

import httpx

from connectors.registry import load_connectors
from schemas.evidence import HouseholdQuery, MemberQuery
from schemas.verification import SourceStatus
from service.partners import build_configs
from service.verification.fanout import BULKHEAD_DETAIL, FanOut
from tests.conftest import LiveService
from tests.factories import make_id_number


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
    )
    assert (await http.put("/sandbox/faults/bank", json={"mode": "hang"})).status_code == 200
    others = sorted(name for name in registry.names() if name != "bank")
    async with httpx.AsyncClient() as client:
        fanout = FanOut(registry, configs, client)
        holder = asyncio.create_task(fanout.fetch("bank", household))
        await asyncio.sleep(0)  # the first bank fetch takes the only slot
        # The next one has a shorter budget, spent waiting for that slot.
        fanout.configs = {**configs, "bank": configs["bank"].model_copy(update={"timeout_s": 0.2})}
        queued, *rest = await asyncio.gather(
            fanout.fetch("bank", household), *(fanout.fetch(name, household) for name in others)
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
