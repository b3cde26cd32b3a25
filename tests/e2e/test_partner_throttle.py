"""A partner's agreed rate and concurrency hold in total over two worker processes on one
PostgreSQL, measured where it counts: at the partner (the sandbox's traffic counts)."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import CLIENT_TLS
from tests.e2e.test_scale_out import (
    fresh_postgres,  # noqa: F401 - a fixture
    processes,
    queue_mode_with_partners,
    start_api,
    token,
)
from tests.factories import make_id_number, member, verification_body

LIMITED = "housing_fund"
"""Asked once per member, all members at once: a household of 8 is 8 concurrent calls."""
CEILING_PER_S = 10
"""The partner's own limit, counted over any one second of arrivals."""
RATE_PER_S = 9
"""hedui's pace, 10 % below the ceiling: hedui sends at most 9 in any second (that a busy
process does not bunch its turns is `tests/integration/test_throttle.py`'s), and on a test
machine loaded past its cores the partner's own count of arrivals can be shifted by tens
of ms (at 10 against 10, one run in three under four CPU hogs counted 11)."""
CONCURRENCY = 2
MEMBERS = 8


def household() -> dict[str, Any]:
    people = [member(make_id_number("530103"))] + [
        member(make_id_number("530103"), name="李四", relation="child") for _ in range(MEMBERS - 1)
    ]
    return verification_body(people, region_code="530103")


async def test_two_workers_keep_a_partner_s_agreed_rate_and_concurrency(
    fresh_postgres: str,  # noqa: F811 - the fixture above
    tmp_path: Path,
) -> None:
    """10 households of 8 through two workers, the housing fund agreeing to 10 calls/s and
    2 at once (and answering in 150 ms, so both limits bind): it never sees more, and every
    verification has its housing fund answer (the calls waited for their turn, none failed)."""
    count = 10
    limits = {LIMITED: {"rate_per_s": RATE_PER_S, "max_concurrency": CONCURRENCY}}
    env = {
        "HEDUI_DATABASE_URL": fresh_postgres,
        "HEDUI_CONNECTORS": json.dumps(limits),
        # 80 calls at 9/s take about 9 s, and probes take turns too: the last household's
        # calls must be let wait their turn, not time out at the default 10 s.
        "HEDUI_CONNECTOR_TIMEOUT_S": "30",
        "HEDUI_VERIFICATION_DEADLINE_S": "60",
    }
    async with processes(tmp_path, env) as group:
        sandbox = await queue_mode_with_partners(group)
        api = await start_api(group, "api")
        for n in range(2):
            group.start(f"worker{n}", "worker", "--concurrency", "2")
        auth = {"Authorization": f"Bearer {token(group)}", "Prefer": "wait=60"}
        async with httpx.AsyncClient(timeout=90, verify=CLIENT_TLS) as client:
            await client.put(f"{sandbox}/faults/{LIMITED}", json={"mode": "ok", "latency_ms": 150})
            await asyncio.sleep(1)  # the workers' start-up checks are not what is measured
            await client.delete(f"{sandbox}/traffic")
            answers = await asyncio.gather(
                *(
                    client.post(f"{api}/v1/verifications", json=household(), headers=auth)
                    for _ in range(count)
                )
            )
            seen = (await client.get(f"{sandbox}/traffic")).json()

    assert [a.status_code for a in answers] == [200] * count, answers[0].text
    limited = [next(s for s in a.json()["sources"] if s["source"] == LIMITED) for a in answers]
    assert {s["status"] for s in limited} <= {"ok", "no_record"}, limited
    assert seen[LIMITED]["calls"] >= count * MEMBERS
    assert seen[LIMITED]["max_in_flight"] == CONCURRENCY, seen
    assert seen[LIMITED]["max_per_second"] <= CEILING_PER_S, seen
