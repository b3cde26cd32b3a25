"""A batch on PostgreSQL with `hedui worker` processes: the households travel as pgqueuer
jobs stored with them, and each agency is asked once per household."""

import asyncio
import json
from pathlib import Path

import httpx

from tests.conftest import CLIENT_TLS
from tests.e2e.test_scale_out import (  # fresh_postgres: the fixture
    SOURCES,
    fresh_postgres,  # noqa: F401 - a fixture, used by name
    household,
    processes,
    queries,
    start_api,
    start_sandbox,
    token,
)


async def test_two_workers_run_a_batch_asking_each_source_once(
    fresh_postgres: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    count = 40
    async with processes(tmp_path, {"HEDUI_DATABASE_URL": fresh_postgres}) as group:
        group.run("db", "upgrade")
        sandbox = await start_sandbox(group)
        group.env.update(
            HEDUI_SANDBOX="off", HEDUI_PARTNER_BASE_URL=sandbox, HEDUI_RUN_MODE="queue"
        )
        api = await start_api(group, "api")
        for n in range(2):
            group.start(f"worker{n}", "worker", "--concurrency", "8")
        body = "".join(json.dumps(household()) + "\n" for _ in range(count))
        headers = {"Authorization": f"Bearer {token(group)}"}
        async with httpx.AsyncClient(
            base_url=api, headers=headers, timeout=60, verify=CLIENT_TLS
        ) as client:
            created = await client.post(
                "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
            )
            assert created.status_code == 201, created.text
            for _ in range(900):
                batch = (await client.get(f"/v1/batches/{created.json()['id']}")).json()
                if batch["progress"]["finished"]:
                    break
                await asyncio.sleep(0.1)
        counted = await queries(sandbox)

    assert batch["by_status"] == {"completed": count}, batch
    assert counted == {source: count if source in SOURCES else 0 for source in counted}
