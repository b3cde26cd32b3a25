"""`hedui keys rotate`: a new data key seals new values and every stored value is re-sealed
with it, resumably, while verifications keep flowing."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.crypto.kek import read_key_file
from service.crypto.keyring import key_id_of
from service.crypto.rotation import SEALED_MODELS, Rotation, remaining
from service.crypto.sealed import sealed_fields
from service.crypto.store import open_keyring
from service.db import create_engine
from service.models import ApiKey, ChangeWarning, Decision, Recheck, Recipient, Webhook
from service.models.base import utcnow
from tests.conftest import (
    CLIENT_TLS,
    KEY_FILE,
    LiveService,
    keyed_session_factory,
    running_service,
    service_settings,
)
from tests.factories import make_id_number, member, verification_body

WAIT = {"Prefer": "wait=15"}


@pytest.fixture
async def service(own_database_url: str, tmp_path: Path) -> AsyncIterator[LiveService]:
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", key_refresh_s=0.1)
    async with running_service(settings) as live:
        yield live


async def _caseworker(service: LiveService) -> httpx.AsyncClient:
    engine = create_engine(service.settings.database_url)
    factory = await keyed_session_factory(engine)
    async with factory() as session:
        _, token = await create_api_key(session, role=Role.admin, region="00")
        await session.commit()
    await engine.dispose()
    return httpx.AsyncClient(
        base_url=service.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )


async def _verify(client: httpx.AsyncClient) -> str:
    people = [make_id_number("530102") for _ in range(3)]
    body = verification_body(
        [
            member(person, relation="applicant" if i == 0 else "child")
            for i, person in enumerate(people)
        ]
    )
    response = await client.post("/v1/verifications", json=body, headers=WAIT)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    report = await client.get(f"/v1/verifications/{response.json()['id']}/report")
    assert report.status_code == 200, report.text
    return str(response.json()["id"])


async def _register_relative(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/near-relatives",
        json={
            "region_code": "530102",
            "staff_name": "李建国",
            "staff_position": "村委会主任",
            "relative_id_number": make_id_number("530102"),
            "relative_name": "张三丰",
            "relationship": "spouse",
        },
    )
    assert response.status_code == 201, response.text


async def _recipient_warning_and_webhook(database_url: str, verification_id: str) -> None:
    """A recipient (its benefit), a warning (its evidence) and a webhook (its secret): rows
    a re-check a year on and an integrator would make, written directly."""
    engine = create_engine(database_url)
    factory = await keyed_session_factory(engine)
    try:
        async with factory() as session:
            key_id = await session.scalar(select(ApiKey.id).limit(1))
            assert key_id is not None
            recipient = Recipient(
                reference="rotation",
                program="dibao",
                area="urban",
                region_code="530102",
                recheck_class="regular",
                status="under_review",
                monthly_benefit=Decimal("512.00"),
                origin_verification_id=verification_id,
                approved_verification_id=verification_id,
                approved_on=date(2026, 12, 4),
                next_recheck_on=date(2027, 12, 4),
                consent_document_id="AUTH-R",
                consent_signed_on=date(2026, 12, 1),
            )
            session.add(recipient)
            await session.flush()
            recheck = Recheck(
                recipient_id=recipient.id,
                due_on=date(2027, 12, 4),
                region_code="530102",
                status="completed",
            )
            session.add(recheck)
            await session.flush()
            session.add_all(
                [
                    ChangeWarning(
                        recipient_id=recipient.id,
                        recheck_id=recheck.id,
                        verification_id=verification_id,
                        previous_verification_id=verification_id,
                        region_code="530102",
                        code="new_vehicle",
                        severity="high",
                        source="vehicles",
                        after=[{"source": "vehicles", "member": None, "fact": "vehicle x"}],
                        proposed_action="stop",
                        benefit_before=Decimal("512.00"),
                        status="open",
                    ),
                    Decision(
                        id="decision-rotation",
                        verification_id=verification_id,
                        decision="approve",
                        reason="documents checked",
                        decided_by=key_id,
                        monthly_benefit=Decimal("512.00"),
                    ),
                    Webhook(
                        url="https://receiver.example.cn/hook",
                        events=["warning.raised"],
                        secret="whsec_rotation_0123456789",
                        region_prefix="53",
                        active=True,
                        created_by=key_id,
                        created_at=utcnow(),
                    ),
                ]
            )
            await session.commit()
            for model in SEALED_MODELS:  # the rotation below has every kind to re-seal
                assert await session.scalar(select(func.count()).select_from(model)), model
    finally:
        await engine.dispose()


def test_every_model_with_sealed_columns_is_rotated() -> None:
    """A model that seals a column but is missing from the rotation would keep values under
    a retired key for ever."""
    from service.models import Base

    sealing = {mapper.class_ for mapper in Base.registry.mappers if sealed_fields(mapper.class_)}
    assert sealing == set(SEALED_MODELS)


async def _kids(database_url: str) -> set[str]:
    """The key ids of every sealed value in the database (opening each one)."""
    engine = create_engine(database_url)
    factory = await keyed_session_factory(engine)
    kids: set[str] = set()
    try:
        async with factory() as session:
            for model in SEALED_MODELS:
                for row in await session.scalars(select(model)):
                    for field in sealed_fields(model):
                        token = getattr(row, field.column)
                        if token is None:  # a sealed column that may be empty (a parked token)
                            continue
                        kids.add(key_id_of(token))
                        getattr(row, field.name)  # opens, or raises
    finally:
        await engine.dispose()
    return kids


async def test_rotation_completes_while_verifications_keep_flowing(service: LiveService) -> None:
    client = await _caseworker(service)
    async with client:
        await _register_relative(client)
        before = [await _verify(client) for _ in range(3)]
        await _recipient_warning_and_webhook(service.settings.database_url, before[0])
        assert await _kids(service.settings.database_url) == {"k1"}

        flowing: list[str] = []
        stop = asyncio.Event()

        async def keep_verifying() -> None:
            while not stop.is_set():
                flowing.append(await _verify(client))

        engine = create_engine(service.settings.database_url)
        try:
            kek = read_key_file(KEY_FILE)
            keyring = await open_keyring(engine, kek)  # as `hedui keys rotate` does
            traffic = asyncio.create_task(keep_verifying())
            rotation = Rotation(engine, kek, keyring, grace_s=0.5, batch_size=2)
            status = await rotation.run()
            during = len(flowing)
            stop.set()
            await traffic
        finally:
            await engine.dispose()

        assert status.target_kid == "k2"
        # Members, sources and reports of before; the recipient, warning and webhook.
        assert status.rewritten >= 3 * (1 + 3 + 6 + 1) + 3
        assert during >= 1, "no verification completed during the rotation"
        assert await _kids(service.settings.database_url) == {"k2"}
        # Every report, old and new, still reads.
        for verification_id in [*before, *flowing]:
            report = await client.get(f"/v1/verifications/{verification_id}/report")
            assert report.status_code == 200, report.text
        after = await _verify(client)
        assert after


async def test_interrupted_rotation_resumes_where_it_stopped(service: LiveService) -> None:
    client = await _caseworker(service)
    async with client:
        for _ in range(2):
            await _verify(client)
    engine = create_engine(service.settings.database_url)
    try:
        kek = read_key_file(KEY_FILE)

        class Interrupted(Exception):
            pass

        def stop_after_first_batch(_: int) -> None:
            raise Interrupted

        async def no_wait(_: float) -> None:
            return None

        first = Rotation(engine, kek, await open_keyring(engine, kek), grace_s=0, batch_size=3)
        first.sleep = no_wait
        with pytest.raises(Interrupted):
            await first.run(stop_after_first_batch)
        async with (await keyed_session_factory(engine))() as session:
            left = await remaining(session, "k2")
            progress = (
                await session.execute(text("SELECT state, rewritten FROM key_rotations"))
            ).one()
        assert progress == ("rewriting", 3)
        assert left > 0

        resumed = Rotation(engine, kek, await open_keyring(engine, kek), grace_s=0, batch_size=3)
        resumed.sleep = no_wait
        status = await resumed.run()
        assert status.target_kid == "k2"  # the same rotation, not a new key
        assert status.rewritten == 3 + left
        assert await _kids(service.settings.database_url) == {"k2"}

        again = Rotation(engine, kek, await open_keyring(engine, kek), grace_s=0)
        again.sleep = no_wait
        assert (await again.run()).target_kid == "k3"  # a finished rotation is not resumed
    finally:
        await engine.dispose()


async def test_cli_init_refuses_to_overwrite_and_rotate_reports_progress(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "deploy.key"
    database = tmp_path / "cli.db"
    env = {
        **os.environ,
        "HEDUI_KEY_FILE": str(key_file),
        "HEDUI_DATABASE_URL": f"sqlite:///{database}",
        "HEDUI_KEY_REFRESH_S": "0.1",
    }

    def hedui(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - this very program
            [sys.executable, "-m", "service.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    made = await asyncio.to_thread(hedui, "keys", "init")
    assert made.returncode == 0, made.stderr
    assert "BACK IT UP" in made.stdout
    assert oct(key_file.stat().st_mode)[-3:] == "600"
    again = await asyncio.to_thread(hedui, "keys", "init")
    assert again.returncode != 0
    assert "never overwritten" in again.stderr + again.stdout

    assert (await asyncio.to_thread(hedui, "db", "upgrade")).returncode == 0
    assert (
        await asyncio.to_thread(hedui, "apikey", "create", "--role", "auditor", "--region", "53")
    ).returncode == 0
    rotated = await asyncio.to_thread(hedui, "keys", "rotate", "--grace-s", "0")
    assert rotated.returncode == 0, rotated.stderr
    assert "every value is sealed with k2" in rotated.stdout
    status = await asyncio.to_thread(hedui, "keys", "status")
    assert status.returncode == 0, status.stderr
    assert "rotation to k2: done" in status.stdout
