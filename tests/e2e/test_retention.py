"""Raw partner records are purged after the retention period; reports and decisions stay."""

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.models import AuditEvent, SourceResult, Verification
from service.models.base import utcnow
from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, verification_body


async def _hedui(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, "HEDUI_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_old_records_are_purged_and_the_report_stands(
    http: httpx.AsyncClient,
    api_client: ClientFactory,
    session_factory: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    person = make_id_number("530105")
    await http.post(
        "/sandbox/people",
        json={"id_number": person, "pension": {"status": "receiving", "monthly_amount": 300}},
    )
    caseworker = await api_client(role="caseworker", region="53")
    created = await caseworker.post(
        "/v1/verifications",
        json=verification_body([member(person)], region_code="530105"),
        headers={"Prefer": "wait=10"},
    )
    verification_id = created.json()["id"]
    before = (await caseworker.get(f"/v1/verifications/{verification_id}/report")).json()
    async with session_factory() as session:
        await session.execute(
            update(Verification)
            .where(Verification.id == verification_id)
            .values(completed_at=utcnow() - timedelta(days=200))
        )
        await session.commit()

    preview = await _hedui("retention", "run", "--dry-run", database_url=database_url)
    purged = await _hedui("retention", "run", database_url=database_url)

    assert preview.returncode == 0, preview.stderr
    assert "would purge" in preview.stdout
    assert purged.returncode == 0, purged.stderr
    assert "purged the raw partner records of" in purged.stdout
    async with session_factory() as session:
        records = [
            row.records  # sealed: opened through the ORM
            for row in await session.scalars(
                select(SourceResult).where(SourceResult.verification_id == verification_id)
            )
        ]
        purge_events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.purge"))
        ).all()
    assert records
    assert all(row == [] for row in records)
    assert purge_events
    assert purge_events[-1].actor_name.startswith("cli:")
    after = await caseworker.get(f"/v1/verifications/{verification_id}/report")
    assert after.status_code == 200
    english = await caseworker.get(
        f"/v1/verifications/{verification_id}/report", headers={"Accept-Language": "en"}
    )
    assert english.status_code == 200, english.text  # as stored: its facts are gone
    assert english.headers["content-language"] == "zh"
    assert english.json() == after.json()
    assert after.json()["report_hash"] == before["report_hash"]
    rescore = await caseworker.post(f"/v1/verifications/{verification_id}/rescore", json={})
    assert rescore.status_code == 409
    assert rescore.json()["type"].endswith("/records-purged")
    again = await _hedui("retention", "run", database_url=database_url)
    assert "of 0 verifications" in again.stdout or verification_id not in again.stdout
