"""The audit trail over real HTTP: who read a person's report, refusals recorded, the
auditor's region, and tampering found by `hedui audit verify`."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.audit.chainer import AuditChainer
from service.audit.repository import AuditRepository
from service.audit.service import Actor, CheckpointPolicy, audit
from service.audit.signing import create_key_file, load_signer, load_verifier
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from service.models import AuditCheckpoint, AuditEvent
from tests.conftest import CLIENT_TLS, ClientFactory, running_service, service_settings
from tests.factories import make_id_number, member, verification_body

WAIT = {"Prefer": "wait=10"}


async def events_about(
    auditor: httpx.AsyncClient, id_number: str, **filters: Any
) -> list[dict[str, Any]]:
    response = await auditor.post("/v1/audit/search", json={"id_number": id_number, **filters})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def verified_in_530104(
    http: httpx.AsyncClient, caseworker: httpx.AsyncClient, headers: dict[str, str] = WAIT
) -> tuple[str, httpx.Response]:
    """A person of county 530104, seeded at the sandbox, and `caseworker`'s verification of
    their household (its end waited for): the ID number and the answer."""
    person = make_id_number("530104")
    await http.post("/sandbox/people", json={"id_number": person})
    created = await caseworker.post(
        "/v1/verifications",
        json=verification_body([member(person)], region_code="530104"),
        headers=headers,
    )
    return person, created


async def test_auditor_finds_who_read_a_persons_report(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client(role="caseworker", region="5301", name="王芳 (五华区)")
    person, created = await verified_in_530104(
        http, caseworker, {**WAIT, "X-Request-ID": "case-42-submit"}
    )
    assert created.status_code == 200, created.text
    verification_id = created.json()["id"]
    report = await caseworker.get(f"/v1/verifications/{verification_id}/report")
    assert report.status_code == 200
    auditor = await api_client(role="auditor", region="53")

    events = await events_about(auditor, person)

    actions = [(event["action"], event["actor_name"], event["object_id"]) for event in events]
    assert ("report.read", "王芳 (五华区)", verification_id) in actions
    assert ("verification.create", "王芳 (五华区)", verification_id) in actions
    create = next(event for event in events if event["action"] == "verification.create")
    assert create["request_id"] == "case-42-submit"
    assert create["object_region"] == "530104"
    assert create["outcome"] == "ok"
    assert person not in str(events)  # events carry ids, never the person's number
    only_reads = await events_about(auditor, person, action="report.read")
    assert {event["action"] for event in only_reads} == {"report.read"}


async def test_refused_read_of_another_regions_household_is_recorded(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    owner = await api_client(role="caseworker", region="5301")
    _, created = await verified_in_530104(http, owner)
    verification_id = created.json()["id"]
    neighbour = await api_client(role="caseworker", region="5303", name="邻县 probe")

    refused = await neighbour.get(f"/v1/verifications/{verification_id}/report")

    assert refused.status_code == 404
    auditor = await api_client(role="auditor", region="00")
    response = await auditor.get("/v1/audit", params={"object_id": verification_id})
    assert response.status_code == 200
    refusals = [event for event in response.json()["items"] if event["outcome"] == "404"]
    assert [(event["actor_name"], event["action"]) for event in refusals] == [
        ("邻县 probe", "report.read")
    ]


async def test_a_body_refused_by_its_model_is_recorded_as_422(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client(role="caseworker", region="5301")
    _, created = await verified_in_530104(http, caseworker)
    verification_id = created.json()["id"]
    approver = await api_client(role="approver", region="5301", name="审批 probe")

    refused = await approver.post(
        f"/v1/verifications/{verification_id}/decision",
        json={"decision": "approve", "reason": "x", "monthly_benefit": "-1"},
    )

    assert refused.status_code == 422
    auditor = await api_client(role="auditor", region="00")
    response = await auditor.get("/v1/audit", params={"object_id": verification_id})
    decisions = [e for e in response.json()["items"] if e["action"] == "decision.record"]
    assert [(e["actor_name"], e["outcome"]) for e in decisions] == [("审批 probe", "422")]


async def test_auditor_sees_only_events_about_their_region(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client(role="caseworker", region="53")
    _, created = await verified_in_530104(http, caseworker)
    verification_id = created.json()["id"]
    elsewhere = await api_client(role="auditor", region="5302")
    here = await api_client(role="auditor", region="5301")

    theirs = await elsewhere.get("/v1/audit", params={"object_id": verification_id})
    ours = await here.get("/v1/audit", params={"object_id": verification_id})

    assert theirs.json()["items"] == []
    assert [event["action"] for event in ours.json()["items"]] == ["verification.create"]


async def test_auditors_of_the_households_region_see_what_is_done_to_its_recipient(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """A recipient's events carry its household's place, as a verification's do: a stop by
    a province's admin is seen by the county's auditors (it was stored with no region, so
    only the actor's own region's auditors saw it)."""
    caseworker = await api_client(role="caseworker", region="53")
    _, created = await verified_in_530104(http, caseworker)
    assert created.json()["recommendation"] == "eligible", created.text
    approver = await api_client(role="approver", region="53")
    decided = await approver.post(
        f"/v1/verifications/{created.json()['id']}/decision",
        json={"decision": "approve", "reason": "ok"},
    )
    assert decided.status_code == 201, decided.text
    listed = await approver.get("/v1/recipients", params={"region_code": "530104"})
    [recipient] = [
        item
        for item in listed.json()["items"]
        if item["origin_verification_id"] == created.json()["id"]
    ]
    admin = await api_client(role="admin", region="00")
    stopped = await admin.post(
        f"/v1/recipients/{recipient['id']}/stop", json={"reason": "moved away"}
    )
    assert stopped.status_code == 200, stopped.text
    county = await api_client(role="auditor", region="530104")
    elsewhere = await api_client(role="auditor", region="5302")

    ours = await county.get("/v1/audit", params={"object_id": recipient["id"]})
    theirs = await elsewhere.get("/v1/audit", params={"object_id": recipient["id"]})

    assert "recipient.stop" in [event["action"] for event in ours.json()["items"]]
    assert theirs.json()["items"] == []


async def test_only_auditors_read_the_trail(api_client: ClientFactory) -> None:
    caseworker = await api_client(role="caseworker", region="53")
    response = await caseworker.get("/v1/audit")
    assert response.status_code == 403


async def test_an_action_the_trail_never_holds_is_422_not_an_empty_page(
    api_client: ClientFactory,
) -> None:
    """A typo in a filter said "nothing happened"; an action recorded only by the command
    line is a filter all the same."""
    auditor = await api_client(role="auditor", region="00")
    typo = await auditor.get("/v1/audit", params={"action": "report.raed"})
    searched = await auditor.post("/v1/audit/search", json={"action": "bogus"})
    by_command = await auditor.get("/v1/audit", params={"action": "apikey.create"})

    assert typo.status_code == 422, typo.text
    assert typo.json()["errors"][0]["loc"] == ["query", "action"]
    assert searched.status_code == 422, searched.text
    assert searched.json()["errors"][0]["loc"] == ["body", "action"]
    assert by_command.status_code == 200, by_command.text


async def test_audit_pages_follow_cursors_newest_first(api_client: ClientFactory) -> None:
    auditor = await api_client(role="auditor", region="00", name="paging auditor")
    for _ in range(5):
        await auditor.get("/v1/audit", params={"limit": 1})
    response = await auditor.get(
        "/v1/audit", params={"action": "audit.read", "limit": 2, "actor_key_id": ""}
    )
    assert response.status_code == 200
    seen: list[int] = []
    cursor: str | None = None
    me = (await auditor.get("/v1/audit", params={"limit": 1})).json()["items"][0]["actor_key_id"]
    while True:
        params: dict[str, Any] = {"actor_key_id": me, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await auditor.get("/v1/audit", params=params)).json()
        seen += [event["id"] for event in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) >= 6
    bad = await auditor.get("/v1/audit", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422


async def test_request_id_is_echoed_or_made_up(http: httpx.AsyncClient) -> None:
    echoed = await http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    made_up = await http.get("/healthz", headers={"X-Request-ID": "no spaces; allowed"})
    assert echoed.headers["x-request-id"] == "abc-123"
    assert made_up.headers["x-request-id"] != "no spaces; allowed"
    assert len(made_up.headers["x-request-id"]) == 32


# Tampering, on a database of the test's own.


@pytest.fixture
async def engine_of(own_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(own_database_url)
    yield engine
    await engine.dispose()


async def _recorded_trail(
    engine: AsyncEngine, key_file: Path, count: int = 12, checkpoint_every: int = 5
) -> async_sessionmaker[AsyncSession]:
    sessions = create_session_factory(engine)
    async with sessions() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="5301", name="甲")
        await session.commit()
        actor = Actor(key_id=key.id, name="甲", role="caseworker", region="5301")
        for index in range(count):
            await audit.record(
                session,
                actor,
                "report.read",
                object_type="verification",
                object_id=f"v-{index}",
                object_region="530102",
            )
        await session.commit()
    signer = create_key_file(key_file)
    await AuditChainer(
        sessions, signer, interval_s=0, policy=CheckpointPolicy(every_links=checkpoint_every)
    ).run_once()
    return sessions


async def _verify(sessions: async_sessionmaker[AsyncSession], key_file: Path) -> Any:
    async with sessions() as session:
        return await audit.verify(session, verifiers=[load_verifier(key_file)])


TAMPERING = {
    "modified": "UPDATE audit_events SET actor_name = '乙' WHERE object_id = 'v-6'",
    "deleted": (
        "DELETE FROM audit_chain WHERE event_id = "
        "(SELECT id FROM audit_events WHERE object_id = 'v-6');"
        "DELETE FROM audit_events WHERE object_id = 'v-6'"
    ),
    "reordered": (
        "UPDATE audit_events SET object_id = CASE object_id WHEN 'v-6' THEN 'v-7' ELSE 'v-6' END "
        "WHERE object_id IN ('v-6', 'v-7')"
    ),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
async def test_verify_names_the_first_tampered_event(
    engine_of: AsyncEngine, tmp_path: Path, tampering: str
) -> None:
    key_file = tmp_path / "audit.key"
    sessions = await _recorded_trail(engine_of, key_file)
    intact = await _verify(sessions, key_file)
    assert intact.ok, intact.problems
    assert intact.links == 12
    assert intact.checkpoints >= 2
    async with sessions() as session:
        seventh = await session.scalar(text("SELECT id FROM audit_events WHERE object_id = 'v-6'"))
        for statement in TAMPERING[tampering].split(";"):
            await session.execute(text(statement))
        await session.commit()

    broken = await _verify(sessions, key_file)

    assert not broken.ok
    if tampering == "deleted":  # the record and its link are gone: named by its place
        assert broken.first_bad_seq == 7
        assert f"after event {seventh - 1}" in broken.problems[0]
    else:
        assert broken.first_bad_event == seventh
        assert f"event {seventh}" in broken.problems[0]


async def test_verify_reads_the_trail_as_of_one_moment(
    engine_of: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaining goes on while an auditor verifies: links and their checkpoint committed
    between two of verify's reads must not show as links without their checkpoint."""
    key_file = tmp_path / "audit.key"
    sessions = await _recorded_trail(engine_of, key_file, count=10, checkpoint_every=5)
    async with sessions() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="5301", name="乙")
        actor = Actor(key_id=key.id, name="乙", role="caseworker", region="5301")
        for index in range(5):
            await audit.record(
                session, actor, "report.read", object_type="verification", object_id=f"w-{index}"
            )
        await session.commit()
    chainer = AuditChainer(
        sessions,
        load_signer(key_file),
        interval_s=0,
        policy=CheckpointPolicy(every_links=5),
    )
    read_checkpoints = AuditRepository.checkpoints

    async def then_chain(repository: AuditRepository) -> Any:
        checkpoints = await read_checkpoints(repository)
        assert await chainer.run_once() == 5
        return checkpoints

    monkeypatch.setattr(AuditRepository, "checkpoints", then_chain)
    during = await _verify(sessions, key_file)
    monkeypatch.undo()
    after = await _verify(sessions, key_file)

    assert during.ok, during.problems
    assert (during.links, during.checkpoints) == (10, 2)  # as before the round
    assert (after.links, after.checkpoints) == (15, 3)


async def test_forged_checkpoint_and_foreign_key_are_found(
    engine_of: AsyncEngine, tmp_path: Path
) -> None:
    key_file = tmp_path / "audit.key"
    sessions = await _recorded_trail(engine_of, key_file)
    async with sessions() as session:
        await session.execute(
            update(AuditCheckpoint).where(AuditCheckpoint.seq == 5).values(signature="00" * 64)
        )
        await session.commit()

    forged = await _verify(sessions, key_file)
    other_key = tmp_path / "other.key"
    create_key_file(other_key)
    async with sessions() as session:
        unknown = await audit.verify(session, verifiers=[load_verifier(other_key)])

    assert "checkpoint 5 has a forged signature" in forged.problems[0]
    assert "not given" in unknown.problems[0]


async def _cli_verify(database_url: str, key_file: Path | None) -> Any:
    """`hedui audit verify` in a process of its own, with the deployment's signing key
    file (None: without one)."""
    env = {**os.environ, "HEDUI_DATABASE_URL": database_url}
    env.pop("HEDUI_AUDIT_SIGNING_KEY_FILE", None)
    if key_file is not None:
        env["HEDUI_AUDIT_SIGNING_KEY_FILE"] = str(key_file)
    command = [sys.executable, "-m", "service.cli", "audit", "verify"]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)


async def _modify_first_event(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Rewrite the oldest event's action behind the trail's back; its id."""
    async with sessions() as session:
        first = await session.scalar(text("SELECT min(id) FROM audit_events"))
        await session.execute(
            update(AuditEvent).where(AuditEvent.id == first).values(action="report.delete")
        )
        await session.commit()
    return int(first)


async def test_with_no_key_at_all_the_links_are_checked_and_the_signatures_not(
    own_database_url: str, engine_of: AsyncEngine, tmp_path: Path
) -> None:
    """No public key is no tampering: exit 2 saying what to give, not "BROKEN" (1); a
    modified event is still found without a key."""
    key_file = tmp_path / "audit.key"
    sessions = await _recorded_trail(engine_of, key_file)
    async with sessions() as session:
        unkeyed = await audit.verify(session, verifiers=[])
    assert unkeyed.ok, unkeyed.problems
    assert unkeyed.unverified == unkeyed.checkpoints > 0

    run = await _cli_verify(own_database_url, None)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "BROKEN" not in run.stderr
    assert "--public-key" in run.stderr

    await _modify_first_event(sessions)
    async with sessions() as session:
        tampered = await audit.verify(session, verifiers=[])
    assert not tampered.ok
    assert "modified" in tampered.problems[0]


async def test_cli_verify_fails_and_names_the_row(
    own_database_url: str, engine_of: AsyncEngine, tmp_path: Path
) -> None:
    key_file = tmp_path / "audit.key"
    sessions = await _recorded_trail(engine_of, key_file, count=3)
    intact = await _cli_verify(own_database_url, key_file)
    assert intact.returncode == 0, intact.stderr
    assert "audit trail intact: 3 links" in intact.stdout
    first = await _modify_first_event(sessions)

    broken = await _cli_verify(own_database_url, key_file)

    assert broken.returncode == 1
    assert f"event {first}" in broken.stderr
    assert "modified" in broken.stderr


async def test_service_chains_events_in_the_background(
    own_database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(
        own_database_url,
        tmp_path / "sandbox.db",
        audit_signing_key_file=tmp_path / "audit.key",
        audit_chain_interval_s=0.05,
    )
    create_key_file(tmp_path / "audit.key")
    async with running_service(settings) as service:
        engine = create_engine(own_database_url)
        sessions = create_session_factory(engine)
        async with sessions() as session:
            _, token = await create_api_key(session, role=Role.auditor, region="00")
            await session.commit()
        async with httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=CLIENT_TLS,
        ) as auditor:
            for _ in range(3):
                assert (await auditor.get("/v1/audit")).status_code == 200
            for _ in range(100):
                report = await _verify(sessions, tmp_path / "audit.key")
                if report.links >= 3:
                    break
                await asyncio.sleep(0.05)
        await engine.dispose()
    assert report.ok, report.problems
    assert report.links == 3
    assert report.checkpoints == 1


async def test_application_role_may_only_insert_and_select_audit_rows(
    own_database_url: str,
) -> None:
    if not own_database_url.startswith("postgresql"):
        pytest.skip("database roles are PostgreSQL's")
    grants = Path(__file__).parents[2] / "docs" / "audit-grants.sql"
    engine = create_engine(own_database_url)
    role = f"hedui_app_{os.getpid()}"
    async with engine.begin() as connection:
        await connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await connection.execute(text(f'CREATE ROLE "{role}"'))
        script = "\n".join(
            line for line in grants.read_text().splitlines() if not line.startswith("--")
        )
        for statement in script.replace("hedui_app", f'"{role}"').split(";"):
            if statement.strip():
                await connection.execute(text(statement))
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'SET ROLE "{role}"'))
            await connection.execute(
                text(
                    "INSERT INTO audit_events (at, actor_name, role, region, action, object_type, "
                    "outcome) VALUES (now(), 'x', 'admin', '', 'test', 'test', 'ok')"
                )
            )
            assert await connection.scalar(text("SELECT count(*) FROM audit_events")) == 1
            for forbidden in (
                "UPDATE audit_events SET actor_name = 'y'",
                "DELETE FROM audit_events",
                "TRUNCATE audit_events",
                "DELETE FROM audit_chain",
                "UPDATE audit_checkpoints SET signature = ''",
            ):
                with pytest.raises(DBAPIError, match="permission denied"):
                    async with connection.begin_nested():
                        await connection.execute(text(forbidden))
            # Everything else of hedui stays writable by the application.
            await connection.execute(text("UPDATE verifications SET status = status"))
            await connection.rollback()
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP OWNED BY "{role}"'))
            await connection.execute(text(f'DROP ROLE "{role}"'))
        await engine.dispose()


async def test_log_lines_carry_the_request_and_verification_ids(
    own_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", log_level="DEBUG")
    engine = create_engine(own_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.caseworker, region="53")
        await session.commit()
    await engine.dispose()
    person = make_id_number("530104")
    async with (
        running_service(settings) as service,
        httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            verify=CLIENT_TLS,
        ) as caseworker,
    ):
        await caseworker.put("/sandbox/faults/pensions", json={"mode": "garbage"})
        capsys.readouterr()
        created = await caseworker.post(
            "/v1/verifications",
            json=verification_body([member(person)], region_code="530104"),
            headers={**WAIT, "X-Request-ID": "trace-me-7"},
        )
        verification_id = created.json()["id"]
        lines = capsys.readouterr().err.splitlines()

    assert any("trace-me-7" in line for line in lines)  # the access line, at least
    run_lines = [line for line in lines if f"verification_id={verification_id}" in line]
    # The partner calls themselves (not only the lines that name it on purpose).
    assert any("HTTP Request" in line and "/pensions/" in line for line in run_lines), run_lines
    assert person not in "\n".join(lines)


async def test_partner_requests_are_not_logged_at_info(
    http: httpx.AsyncClient, api_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    person = make_id_number("530104")
    caseworker = await api_client(role="caseworker", region="53")
    capsys.readouterr()
    await caseworker.post(
        "/v1/verifications",
        json=verification_body([member(person)], region_code="530104"),
        headers=WAIT,
    )
    lines = capsys.readouterr().err.splitlines()
    assert not [line for line in lines if "HTTP Request" in line and "/sandbox/" in line]
    # One line for the run at INFO; how each source ended is DEBUG detail.
    [finished] = [line for line in lines if "run_finished" in line]
    assert "sources={'ok': " in finished or "sources={'no_record': " in finished, finished
    assert not [line for line in lines if "source_settled" in line]


async def test_verify_says_how_many_of_the_newest_links_no_checkpoint_signs_yet(
    own_database_url: str, engine_of: AsyncEngine, tmp_path: Path
) -> None:
    """A chain cannot show its own tail cut off: the links after the last signed
    checkpoint are named, so that an operator knows what is not yet protected."""
    key_file = tmp_path / "audit.key"
    sessions = await _recorded_trail(engine_of, key_file, count=10, checkpoint_every=5)
    async with sessions() as session:
        key, _ = await create_api_key(session, role=Role.caseworker, region="5301", name="乙")
        actor = Actor(key_id=key.id, name="乙", role="caseworker", region="5301")
        for index in range(2):
            await audit.record(
                session,
                actor,
                "report.read",
                object_type="verification",
                object_id=f"w-{index}",
                object_region="530102",
            )
        await session.commit()
    # Chained, with no checkpoint due yet (none for another 1,000 links or 5 minutes).
    await AuditChainer(
        sessions, load_signer(key_file), interval_s=0, policy=CheckpointPolicy()
    ).run_once()
    report = await _verify(sessions, key_file)
    assert report.ok, report.problems
    assert (report.links, report.signed_through) == (12, 10)
    done = await _cli_verify(own_database_url, key_file)
    assert done.returncode == 0, done.stderr
    assert "the newest 2 links (11-12) come after the last signed checkpoint" in done.stdout


async def test_with_no_database_there_verify_says_it_could_not_check_not_intact(
    tmp_path: Path,
) -> None:
    """Run from the wrong directory by a scheduled check: 3, never 2 (links intact)."""
    run = await _cli_verify(f"sqlite+aiosqlite:///{tmp_path / 'nowhere.db'}", None)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "there is no database" in run.stderr
    assert not (tmp_path / "nowhere.db").exists()
