"""Approve, wait a year, see the warnings: re-checks end to end, over real HTTP and the
sandbox agencies, with `hedui recheck` as an operator runs it."""

import asyncio
import getpass
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine

from connectors.registry import ConnectorRegistry
from service.connector.monitor import HealthMonitor
from service.db import create_engine, create_session_factory
from service.models import ApiKey, Recheck, Recipient, Verification
from service.models.base import utcnow
from service.policy.catalog import PolicyCatalog
from service.recheck.drive import run_until_done
from service.recipient.calendar import add_months
from service.recipient.repository import RecipientRepository
from service.retention.service import RetentionService
from service.runtime import build_runtime
from tests.conftest import _free_port
from tests.connectors.declarative.specs import example
from tests.e2e.office import (
    CONSENT_LIMITED,
    WAIT,
    Office,
    a_year_on,
    audit_events,
    bearer_client,
    rechecks_of,
)
from tests.factories import make_id_number, member, near_relative_body, verification_body
from tests.stored import api_tokens


async def test_a_new_car_a_year_on_raises_one_warning_and_opens_a_review(office: Office) -> None:
    parent, child = make_id_number("530102"), make_id_number("530102", birth="20100101")
    verification_id = await office.approve("530102", {"id_number": parent}, {"id_number": child})
    car = {"plate": "云A8K123", "type": "car", "registered_on": "2027-03-01", "value": 85000}
    await office.sandbox.post("/sandbox/people", json={"id_number": child, "vehicles": [car]})

    ran = await office.recheck("--as-of", a_year_on().isoformat(), own_process=True)
    assert ran.returncode == 0, ran.stderr
    assert "1 re-checked" in ran.stdout, ran.stdout
    assert "1 warning raised" in ran.stdout, ran.stdout
    assert "warnings: GET /v1/warnings\n" in ran.stdout, ran.stdout

    listed = await office.caseworker.get("/v1/warnings", params={"region_code": "530102"})
    assert listed.status_code == 200, listed.text
    [warning] = listed.json()["items"]
    assert warning["code"] == "new_vehicle"
    by_code = await office.caseworker.get("/v1/warnings", params={"code": "new_vehicle"})
    assert [item["id"] for item in by_code.json()["items"]] == [warning["id"]]
    other = await office.caseworker.get("/v1/warnings", params={"code": "vehicle_gone"})
    assert other.json()["items"] == []
    assert (await office.caseworker.get("/v1/warnings?code=NEW")).status_code == 422
    assert warning["severity"] == "high"
    assert warning["member"] == child[:6] + "********" + child[-4:]
    assert warning["before"] == []
    assert warning["after"] == [
        {
            "source": "vehicles",
            "member": warning["member"],
            "fact": "vehicle plate=云A8K123 type=car registered_on=2027-03-01 value=85000.00",
        }
    ]
    assert warning["proposed_action"] in ("stop", "review")
    assert warning["changes_eligibility"] is True
    assert warning["previous_verification_id"] == verification_id
    assert warning["review_verification_id"] == warning["verification_id"]
    assert parent not in listed.text
    assert child not in listed.text

    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "under_review"
    assert date.fromisoformat(recipient["next_recheck_on"]) > a_year_on()

    # Run again, and by a second process: nothing more is started.
    again = await office.recheck("--as-of", a_year_on().isoformat(), own_process=True)
    assert f"Nothing is due on {a_year_on()} in any region" in again.stdout, again.stdout
    assert f"the next re-check is due on {recipient['next_recheck_on']}" in again.stdout
    assert len((await office.caseworker.get("/v1/warnings")).json()["items"]) == 1

    summary = (await office.caseworker.get("/v1/warnings/summary")).json()
    assert summary == {
        "regions": [
            {"region_code": "530102", "open": 1, "acknowledged": 0, "resolved": 0, "high": 1}
        ]
    }
    county = await office.caseworker.get("/v1/warnings/summary", params={"region_code": "5301"})
    assert county.json() == summary
    elsewhere = await office.caseworker.get("/v1/warnings/summary?region_code=530103")
    assert elsewhere.json() == {"regions": []}
    naming = await office.caseworker.post(
        f"/v1/warnings/{warning['id']}/acknowledge", json={"note": "visiting 张 三 on Monday"}
    )
    assert naming.status_code == 422, naming.text
    assert naming.json()["errors"][0]["loc"] == ["body", "note"]
    assert "张" not in naming.text
    acknowledged = await office.caseworker.post(
        f"/v1/warnings/{warning['id']}/acknowledge", json={"note": "visiting on Monday"}
    )
    assert acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["acknowledged_by"] == "Panlong caseworker"  # a name, not a key
    assert (
        await office.caseworker.post(
            f"/v1/warnings/{warning['id']}/acknowledge", json={"note": "again"}
        )
    ).status_code == 409
    resolved = await office.caseworker.post(
        f"/v1/warnings/{warning['id']}/resolve", json={"note": "the car is the child's own"}
    )
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolved_by"] == "Panlong caseworker"
    assert resolved.json()["resolved_by_key_id"] == acknowledged.json()["acknowledged_by_key_id"]
    # Both notes are kept; `note` is the latest.
    assert acknowledged.json()["acknowledged_note"] == "visiting on Monday"
    assert resolved.json()["acknowledged_note"] == "visiting on Monday"
    assert resolved.json()["resolved_note"] == "the car is the child's own"
    assert resolved.json()["note"] == "the car is the child's own"
    read = (await office.caseworker.get(f"/v1/warnings/{warning['id']}")).json()
    assert (read["acknowledged_note"], read["resolved_note"]) == (
        "visiting on Monday",
        "the car is the child's own",
    )

    # The approval step on the re-check's report: a rejection takes the household off.
    decided = await office.approver.post(
        f"/v1/verifications/{warning['review_verification_id']}/decision",
        json={"decision": "reject", "reason": "owns a car"},
    )
    assert decided.status_code == 201, decided.text
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "left"
    assert "owns a car" in recipient["left_reason"]


async def test_an_unchanged_household_raises_nothing(office: Office) -> None:
    await office.approve("530102", {"id_number": make_id_number("530102")})
    preview = await office.recheck("--as-of", a_year_on().isoformat(), "--dry-run")
    assert "1 to start" in preview.stdout, preview.stdout
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 re-checked" in ran.stdout, ran.stdout
    assert "0 warnings raised" in ran.stdout, ran.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "active"

    # The scheduler's own identity, as an admin listing the keys finds it: never usable,
    # and saying why.
    engine = create_engine(office.env["HEDUI_DATABASE_URL"])
    async with create_session_factory(engine)() as session:
        [key] = (
            await session.scalars(select(ApiKey).where(ApiKey.token_hash.like("scheduler:%")))
        ).all()
    await engine.dispose()
    assert key.revoked_at == key.created_at
    assert (key.revoked_reason or "").startswith("internal:")


@pytest.mark.parametrize("leaves_by", ["stop", "reject"])
async def test_a_household_leaving_the_roll_resolves_its_warnings(
    office: Office, leaves_by: str
) -> None:
    """Nothing is left to act on: the open warning is resolved by whoever took the
    household off, saying so, and the summary counts it no more."""
    parent = make_id_number("530102")
    await office.approve("530102", {"id_number": parent})
    car = {"plate": "云A8K124", "type": "car", "registered_on": "2027-03-01", "value": 85000}
    await office.sandbox.post("/sandbox/people", json={"id_number": parent, "vehicles": [car]})
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 warning raised" in ran.stdout, ran.stdout
    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]

    if leaves_by == "stop":
        left = await office.approver.post(
            f"/v1/recipients/{recipient['id']}/stop", json={"reason": "owns a car"}
        )
        assert left.status_code == 200, left.text
    else:
        left = await office.approver.post(
            f"/v1/verifications/{warning['review_verification_id']}/decision",
            json={"decision": "reject", "reason": "owns a car"},
        )
        assert left.status_code == 201, left.text

    read = (await office.caseworker.get(f"/v1/warnings/{warning['id']}")).json()
    assert read["status"] == "resolved"
    expected = "stopped" if leaves_by == "stop" else "rejected"
    assert read["resolved_note"] == f"the household left the roll ({expected})"
    assert read["resolved_by"] == "Panlong approver"
    [region] = (await office.caseworker.get("/v1/warnings/summary")).json()["regions"]
    assert (region["open"], region["high"], region["resolved"]) == (0, 0, 1)


async def test_a_schedule_approved_on_a_months_last_day_keeps_to_it(office: Office) -> None:
    """Approved on 31 August, due on 28 February: the re-check after it is due on 31 August
    again, not the 28th (the recipient's day is kept; here set as if so approved)."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    [listed] = (await office.approver.get("/v1/recipients")).json()["items"]
    months = 12 if listed["recheck_class"] == "regular" else 6
    due = date(2027, 2, 28)
    engine = create_engine(office.env["HEDUI_DATABASE_URL"])
    async with create_session_factory(engine)() as session:
        await session.execute(update(Recipient).values(next_recheck_on=due, recheck_day=31))
        await session.commit()
    await engine.dispose()

    ran = await office.recheck("--as-of", due.isoformat())

    assert "1 re-checked" in ran.stdout, ran.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["next_recheck_on"] == add_months(date(2026, 8, 31), 6 + months).isoformat()


@pytest.mark.parametrize("own_address", [False, True], ids=["none-answers", "one-of-its-own"])
async def test_with_no_partner_answering_nothing_is_started_and_the_roll_is_untouched(
    office: Office, own_address: bool
) -> None:
    """A shell whose settings are not the server's (another port) reaches no partner:
    re-checking the roll then would put every household under review for nothing. So too
    when a partner registered at an address of its own answers, but none of those asked at
    HEDUI_PARTNER_BASE_URL does."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    [before] = (await office.caseworker.get("/v1/recipients")).json()["items"]
    nowhere = {"HEDUI_PARTNER_BASE_URL": f"http://127.0.0.1:{_free_port()}/sandbox"}
    if own_address:
        answering = {"vehicles": {"base_url": f"{office.env['HEDUI_PARTNER_BASE_URL']}/vehicles"}}
        nowhere["HEDUI_CONNECTORS"] = json.dumps(answering)

    ran = await office.recheck("--as-of", a_year_on().isoformat(), env=nowhere)

    assert ran.returncode == 1, ran.stdout
    which = "no partner at http://127.0.0.1:" if own_address else "no partner answered"
    assert f"Nothing was started: {which}" in ran.stdout, ran.stdout
    assert ("vehicles" in ran.stdout) is not own_address  # it answered; the others are named
    assert "--even-if-partners-down" in ran.stdout
    # Nothing asked on after the answer: no check crashing through a closed client.
    for noise in ("probe_crashed", "throttle_unavailable", "Traceback"):
        assert noise not in ran.stdout + ran.stderr
    [after] = (await office.caseworker.get("/v1/recipients")).json()["items"]
    assert after == before
    assert (await office.caseworker.get("/v1/warnings")).json()["items"] == []
    engine = create_engine(office.env["HEDUI_DATABASE_URL"])
    try:
        async with create_session_factory(engine)() as session:
            assert (await session.scalars(select(Recheck))).all() == []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("disabled_during_the_look", [False, True])
async def test_a_connector_registered_over_the_api_is_asked_with_the_others(
    office: Office, monkeypatch: pytest.MonkeyPatch, disabled_during_the_look: bool
) -> None:
    """The look at the partners before the pass asks the connectors registered over the
    API too (their base URL is their spec's, not a setting's): it ran into a KeyError on
    the first one, and no re-check started while one was enabled. Nor does one disabled
    while the look waits for the partners' answers stop the pass."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    # Connectors serve every region: an integrator's key is of all of them.
    tokens = await api_tokens(office.env["HEDUI_DATABASE_URL"], "integrator", region="00")
    token = tokens["integrator"]
    async with bearer_client(office.service.base_url, token) as integrator:
        spec = example("tax", f"{office.service.base_url}/sandbox")
        created = await integrator.post("/v1/connectors", json=spec)
        assert created.status_code == 201, created.text
        enabled = await integrator.post("/v1/connectors/tax/enable", json={"force": True})
        assert enabled.status_code == 200, enabled.text
    if disabled_during_the_look:
        look = HealthMonitor.unanswered

        async def then_disabled(
            monitor: HealthMonitor, registry: ConnectorRegistry, *args: Any
        ) -> Any:
            answer = await look(monitor, registry, *args)
            async with bearer_client(office.service.base_url, token) as integrator:
                disabled = await integrator.post("/v1/connectors/tax/disable")
                assert disabled.status_code == 200, disabled.text
            for _ in range(200):  # until the command's registry has dropped it
                if "tax" not in registry.names():
                    return answer
                await asyncio.sleep(0.05)
            raise AssertionError("the command never read that tax was disabled")

        monkeypatch.setattr(HealthMonitor, "unanswered", then_disabled)

    ran = await office.recheck(
        "--as-of", a_year_on().isoformat(), env={"HEDUI_CONNECTOR_REFRESH_S": "0.2"}
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 re-checked" in ran.stdout, ran.stdout


async def test_a_partner_down_at_the_recheck_opens_a_review_not_another_year(
    office: Office,
) -> None:
    parent, child = make_id_number("530102"), make_id_number("530102", birth="20100101")
    await office.approve("530102", {"id_number": parent}, {"id_number": child})
    car = {"plate": "云A8K124", "type": "car", "registered_on": "2027-03-01", "value": 85000}
    await office.sandbox.post("/sandbox/people", json={"id_number": child, "vehicles": [car]})
    await office.sandbox.put("/sandbox/faults/vehicles", json={"mode": "down"})
    try:
        ran = await office.recheck("--as-of", a_year_on().isoformat())
    finally:
        await office.sandbox.delete("/sandbox/faults/vehicles")
    assert ran.returncode == 0, ran.stderr
    assert "Not answering its health check: vehicles;" in ran.stdout, ran.stdout
    assert "1 warning raised" in ran.stdout, ran.stdout

    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    assert warning["code"] == "recheck_incomplete"
    assert warning["severity"] == "high"
    assert warning["source"] == "vehicles"
    assert warning["after"] == [{"source": "vehicles", "member": None, "fact": "status=error"}]
    assert warning["proposed_action"] == "review"
    assert warning["review_verification_id"] == warning["verification_id"]
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "under_review"


async def test_an_expired_authorization_is_listed_not_queried(office: Office) -> None:
    await office.approve(CONSENT_LIMITED, {"id_number": make_id_number(CONSENT_LIMITED)})
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "0 re-checked, 1 need new consent" in ran.stdout, ran.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["needs_new_consent"] is True
    older = await office.caseworker.post(
        f"/v1/recipients/{recipient['id']}/consent",
        json={"document_id": "AUTH-OLD", "signed_on": "2000-01-01"},
    )
    assert older.status_code == 422, older.text  # not newer than the one on record
    assert older.json()["errors"][0]["loc"] == ["body", "signed_on"]
    renewed = await office.caseworker.post(
        f"/v1/recipients/{recipient['id']}/consent",
        json={"document_id": "AUTH-0002", "signed_on": date.today().isoformat()},
    )
    assert renewed.status_code == 200, renewed.text
    await office.sandbox.delete("/sandbox/queries/consent")
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 re-checked" in ran.stdout, ran.stdout
    # Every partner was told the authorization recorded last, not the one approved with.
    told = (await office.sandbox.get("/sandbox/queries/consent")).json()["agencies"]
    for source in ("vehicles", "pensions", "housing_fund", "real_estate", "public_payroll", "bank"):
        assert told[source]["calls"] >= 1, (source, told[source])
        assert told[source]["seen"] == [
            {"consent_id": "AUTH-0002", "purpose": "dibao", "calls": told[source]["calls"]}
        ], (source, told[source])


async def test_a_first_verification_on_an_expired_authorization_asks_no_partner(
    office: Office,
) -> None:
    """The region holds an authorization good for 12 months: one signed 13 months ago is
    refused at submission, before any partner is asked; one signed within is not."""
    person = make_id_number(CONSENT_LIMITED)
    await office.sandbox.delete("/sandbox/queries/consent")
    signed = add_months(date.today(), -13)
    body = verification_body([member(person)], region_code=CONSENT_LIMITED, as_of=None) | {
        "consent": {"document_id": "AUTH-OLD-1", "signed_on": signed.isoformat()}
    }

    refused = await office.caseworker.post("/v1/verifications", json=body, headers=WAIT)

    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["loc"] == ["body", "consent", "signed_on"]
    assert f"ran out on {add_months(signed, 12)}" in error["msg"]
    told = (await office.sandbox.get("/sandbox/queries/consent")).json()["agencies"]
    assert all(agency["calls"] == 0 for agency in told.values()), told
    body["consent"]["signed_on"] = add_months(date.today(), -11).isoformat()
    accepted = await office.caseworker.post("/v1/verifications", json=body, headers=WAIT)
    assert accepted.status_code == 200, accepted.text
    # Scored under a past policy (3 months then): the authorization is held to today's.
    past = body | {"reference": "case-past", "as_of": "2020-01-01"}
    past["members"] = [member(make_id_number(CONSENT_LIMITED))]
    scored_then = await office.caseworker.post("/v1/verifications", json=past, headers=WAIT)
    assert scored_then.status_code == 200, scored_then.text


async def test_two_schedulers_at_once_start_each_recheck_once(office: Office) -> None:
    for _ in range(3):
        await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    async with (
        build_runtime(settings, runs_here=False) as first,
        build_runtime(settings, runs_here=False) as second,
    ):
        passes = await asyncio.gather(
            first.rechecks.run_due(a_year_on()), second.rechecks.run_due(a_year_on())
        )
    started = [v.id for done in passes for v in done.started]
    assert len(started) == len(set(started)) == 3


async def test_a_pass_never_adds_to_a_batch_that_is_cancelled_or_closed(office: Office) -> None:
    """The day's batch takes re-checks while it is open. Cancelled by a caseworker, or
    closed by a pass that went through everything due, it takes no more: a later pass of
    the same day (its re-check started again, recipients approved since) starts the day's
    next batch."""
    for _ in range(2):
        await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )

    async def batch(batch_id: str) -> tuple[str, int, int, str]:
        view = (await office.caseworker.get(f"/v1/batches/{batch_id}")).json()
        return view["status"], view["lines_received"], view["households"], view["reference"]

    async with build_runtime(settings, runs_here=False) as runtime:
        scheduler = runtime.rechecks
        first = await scheduler.run_due(a_year_on(), limit=1)
        assert (len(first.started), first.exhausted) == (1, False)
        [cancelled] = first.batches
        assert (await batch(cancelled))[:3] == ("open", 1, 1)
        answer = await office.caseworker.post(f"/v1/batches/{cancelled}/cancel")
        assert answer.status_code == 200, answer.text

        second = await scheduler.run_due(a_year_on())
        assert (len(second.started), second.exhausted) == (2, True)
        [closed] = second.batches
        assert closed != cancelled
        assert (await batch(cancelled))[:3] == ("cancelled", 1, 1)
        day = a_year_on().isoformat()
        assert await batch(closed) == ("closed", 2, 2, f"re-checks 530102 {day} (2)")

        await office.approve("530102", {"id_number": make_id_number("530102")})
        third = await scheduler.run_due(a_year_on())
        assert len(third.started) == 1
        [latest] = third.batches
        assert latest not in (cancelled, closed)
        assert (await batch(closed))[:3] == ("closed", 2, 2)
        assert await batch(latest) == ("closed", 1, 1, f"re-checks 530102 {day} (3)")
        lines = (await office.caseworker.get(f"/v1/batches/{latest}/verifications")).json()
        assert [item["line"] for item in lines["items"]] == [1]


async def test_a_recheck_cancelled_with_its_batch_is_started_again(office: Office) -> None:
    """A caseworker cancels the day's re-check batch before its re-check has started: the
    re-check ends with it, the recipient is due again on the date it was due, and the next
    pass starts a fresh re-check in the day's next batch (the cancelled one takes no more),
    instead of counting the cancelled one as running for ever while the recipient waits a
    whole period."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    async with build_runtime(settings, runs_here=False) as runtime:
        scheduler = runtime.rechecks

        async def running() -> int:
            async with runtime.session_factory() as session:
                return await RecipientRepository.from_session(session).unfinished_rechecks()

        first = await scheduler.run_due(a_year_on())
        [started] = first.started
        [cancelled] = first.batches
        answer = await office.caseworker.post(f"/v1/batches/{cancelled}/cancel")
        assert answer.status_code == 200, answer.text
        read = (await office.caseworker.get(f"/v1/verifications/{started.id}")).json()
        assert read["status"] == "cancelled"
        [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
        assert date.fromisoformat(recipient["next_recheck_on"]) <= a_year_on()
        assert await running() == 0
        assert (await scheduler.preview(a_year_on())).queued == 1

        again = await scheduler.run_due(a_year_on())
        assert (dict(again.outcomes), await running()) == ({"queued": 1}, 1)
        [fresh] = again.started
        [batch_id] = again.batches
        assert (fresh.id != started.id, batch_id != cancelled) == (True, True)
        batch = (await office.caseworker.get(f"/v1/batches/{batch_id}")).json()
        day = a_year_on().isoformat()
        assert (batch["reference"], batch["households"]) == (f"re-checks 530102 {day} (2)", 1)
        [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
        assert date.fromisoformat(recipient["next_recheck_on"]) > a_year_on()
        assert (await scheduler.run_due(a_year_on())).started == []


async def test_a_recheck_running_when_its_batch_is_cancelled_runs_to_its_end(
    office: Office,
) -> None:
    """A partner had been asked already when the caseworker cancelled the day's re-check
    batch: the re-check runs to its end like any started verification and counts as done,
    so the recipient is next due a period on and no pass starts it again."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    await office.sandbox.put("/sandbox/faults/pensions", json={"mode": "slow", "latency_ms": 500})
    try:
        async with build_runtime(settings, runs_here=True) as runtime:
            first = await runtime.rechecks.run_due(a_year_on())
            [started] = first.started
            [cancelled] = first.batches
            answer = await office.caseworker.post(f"/v1/batches/{cancelled}/cancel")
            assert answer.status_code == 200, answer.text
            assert answer.json()["by_status"] == {"running": 1}

            for _ in range(200):
                read = (await office.caseworker.get(f"/v1/verifications/{started.id}")).json()
                if read["status"] not in ("queued", "running"):
                    break
                await asyncio.sleep(0.05)
            assert read["status"] == "completed"
            async with runtime.session_factory() as session:
                recipients = RecipientRepository.from_session(session)
                assert await recipients.unfinished_rechecks() == 0
                [recheck] = (await session.scalars(select(Recheck))).all()
            assert (recheck.status, recheck.verification_id) == ("completed", started.id)
            [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
            assert date.fromisoformat(recipient["next_recheck_on"]) > a_year_on()
            assert (await runtime.rechecks.run_due(a_year_on())).started == []
    finally:
        await office.sandbox.delete("/sandbox/faults/pensions")


async def test_a_refused_recheck_is_reported_on_every_pass_and_started_once_it_can_be(
    office: Office,
) -> None:
    """A re-check the intake refuses (here: no policy in force that day) starts nothing and
    leaves the recipient due: every pass says it could not be started, not that it was
    started already; once it can be, the next pass starts it."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    async with build_runtime(settings, runs_here=False) as runtime:
        scheduler = runtime.rechecks
        catalog, scheduler.catalog = scheduler.catalog, PolicyCatalog([])
        for _ in range(2):
            refused = await scheduler.run_due(a_year_on())
            assert (refused.started, dict(refused.outcomes)) == ([], {"failed": 1})
            assert await scheduler.count_due(a_year_on()) == 1
            plan = await scheduler.preview(a_year_on())
            assert (plan.queued, plan.already_scheduled) == (1, 0)

        scheduler.catalog = catalog
        started = await scheduler.run_due(a_year_on())
        assert (len(started.started), dict(started.outcomes)) == (1, {"queued": 1})
        assert await scheduler.count_due(a_year_on()) == 0
        again = await scheduler.preview(a_year_on())
        assert (again.queued, again.already_scheduled) == (0, 0)


async def test_a_withdrawn_recheck_waits_for_a_new_authorization(office: Office) -> None:
    """The re-check's verification is withdrawn (perhaps the household's consent): the
    recipient is due again on the date it was due, listed as needing new consent on every
    pass, and the first pass after a new authorization starts a fresh re-check."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    await office.sandbox.put("/sandbox/faults/pensions", json={"mode": "hang"})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    async with build_runtime(settings, runs_here=False) as runtime:
        scheduler = runtime.rechecks
        [first] = (await scheduler.run_due(a_year_on())).started
        [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
        assert date.fromisoformat(recipient["next_recheck_on"]) > a_year_on()

        withdrawn = await office.caseworker.post(f"/v1/verifications/{first.id}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
        [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
        assert date.fromisoformat(recipient["next_recheck_on"]) <= a_year_on()
        assert recipient["needs_new_consent"] is True
        for _ in range(2):
            held = await scheduler.run_due(a_year_on())
            assert (held.started, dict(held.outcomes)) == ([], {"needs_consent": 1})
        assert (await scheduler.preview(a_year_on())).needs_consent == 1

        renewed = await office.caseworker.post(
            f"/v1/recipients/{recipient['id']}/consent",
            json={
                "document_id": "AUTH-0003",
                "signed_on": office.today().isoformat(),
            },
        )
        assert renewed.status_code == 200, renewed.text
        again = await scheduler.run_due(a_year_on())
        assert dict(again.outcomes) == {"queued": 1}
        [fresh] = again.started
        assert fresh.id != first.id
        assert await scheduler.count_due(a_year_on()) == 0
        assert (await scheduler.run_due(a_year_on())).started == []
    await office.sandbox.delete("/sandbox/faults/pensions")


async def test_a_recipient_who_left_needs_no_new_authorization(office: Office) -> None:
    """A re-check withdrawn with the household's consent holds the recipient for a new
    authorization; once the approver takes it off the roll, nothing is pending any more."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    await office.sandbox.put("/sandbox/faults/pensions", json={"mode": "hang"})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    try:
        async with build_runtime(settings, runs_here=False) as runtime:
            [first] = (await runtime.rechecks.run_due(a_year_on())).started
        withdrawn = await office.caseworker.post(f"/v1/verifications/{first.id}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
        [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
        assert recipient["needs_new_consent"] is True

        stopped = await office.approver.post(
            f"/v1/recipients/{recipient['id']}/stop", json={"reason": "moved away"}
        )

        assert stopped.status_code == 200, stopped.text
        assert (stopped.json()["needs_new_consent"], stopped.json()["next_recheck_on"]) == (
            False,
            None,
        )
    finally:
        await office.sandbox.delete("/sandbox/faults/pensions")


async def test_a_benefit_granted_by_hand_is_what_a_recheck_compares_with(
    office: Office,
) -> None:
    """A review report approved with the approver's amount: a year on, the re-check
    computes the benefit itself, and another amount is a warning against what is paid."""
    id_number = make_id_number("530102")
    assert (await office.sandbox.post("/sandbox/people", json={"id_number": id_number})).is_success
    body = verification_body([member(id_number)], region_code="530102", as_of=None)
    await office.sandbox.put("/sandbox/faults/vehicles", json={"mode": "garbage"})
    try:
        created = await office.caseworker.post("/v1/verifications", json=body, headers=WAIT)
    finally:
        await office.sandbox.delete("/sandbox/faults/vehicles")
    assert created.json()["recommendation"] == "review", created.text
    decided = await office.approver.post(
        f"/v1/verifications/{created.json()['id']}/decision",
        json={"decision": "approve", "reason": "车辆已核实", "monthly_benefit": "1000.00"},
    )
    assert decided.status_code == 201, decided.text

    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert ran.returncode == 0, ran.stderr
    assert "1 warning raised" in ran.stdout, ran.stdout

    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    assert warning["code"] == "benefit_differs"
    assert warning["severity"] == "medium"
    assert warning["benefit_before"] == "1000.00"  # what is paid, not the report's none
    assert warning["benefit_after"] == "640.00"
    assert warning["proposed_action"] == "lower"
    assert warning["before"][0]["fact"] == "granted by the approver: 1000.00"
    assert warning["after"][0]["fact"] == "computed: 640.00"
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "under_review"


async def test_a_failed_recheck_makes_the_recipient_due_again(office: Office) -> None:
    """The re-check's verification fails (here: no policy in force any more when its
    answers are in): the recipient is due again on the date it was due, and a pass starts
    the re-check again once its wait has ended (5 minutes, then 10, ...): the passes in
    between ask no partner. Once the policy is back, it completes."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    engine = create_engine(office.env["HEDUI_DATABASE_URL"])
    sessions = create_session_factory(engine)

    async def the_recheck() -> Recheck:
        async with sessions() as session:
            [recheck] = (await session.scalars(select(Recheck))).all()
            return recheck

    async def wait_ends() -> None:
        async with sessions() as session:
            await session.execute(update(Recheck).values(retry_at=utcnow() - timedelta(seconds=1)))
            await session.commit()

    async with build_runtime(settings, runs_here=True) as runtime:
        catalog, runtime.workflow.catalog = runtime.workflow.catalog, PolicyCatalog([])
        failed = await run_until_done(runtime.rechecks, a_year_on(), poll_s=0.05)
        assert dict(failed.outcomes) == {"queued": 1, "failed_run": 1}
        [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
        assert date.fromisoformat(recipient["next_recheck_on"]) <= a_year_on()
        assert recipient["needs_new_consent"] is False
        recheck = await the_recheck()
        assert (recheck.status, recheck.failures) == ("failed", 1)
        assert recheck.retry_at is not None
        assert recheck.completed_at is not None
        assert recheck.retry_at - recheck.completed_at == timedelta(minutes=5)

        waiting = await runtime.rechecks.run_due(a_year_on())
        assert (dict(waiting.outcomes), waiting.started) == ({"retry_later": 1}, [])
        preview = await runtime.rechecks.preview(a_year_on())
        assert (preview.queued, preview.retry_later) == (0, 1)
        assert [item.outcome for item in preview.items] == ["retry_later"]

        await wait_ends()
        again = await run_until_done(runtime.rechecks, a_year_on(), poll_s=0.05)
        assert dict(again.outcomes) == {"queued": 1, "failed_run": 1}
        recheck = await the_recheck()
        assert (recheck.status, recheck.failures) == ("failed", 2)
        assert recheck.retry_at is not None
        assert recheck.completed_at is not None
        assert recheck.retry_at - recheck.completed_at == timedelta(minutes=10)

        runtime.workflow.catalog = catalog
        await wait_ends()
        done = await run_until_done(runtime.rechecks, a_year_on(), poll_s=0.05)
        assert dict(done.outcomes) == {"queued": 1}
        [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
        assert date.fromisoformat(recipient["next_recheck_on"]) > a_year_on()
        assert await runtime.rechecks.count_due(a_year_on()) == 0
        assert (await the_recheck()).status == "completed"
    await engine.dispose()


async def test_a_recheck_reads_the_approved_report_back_in_three_statements(
    office: Office,
) -> None:
    """Change detection reads the approved verification, its members and its sources,
    and its report: the report comes with the verification, in the same statement. (The
    scheduler reads the approved verification and its members once more, at the start, to
    build the re-check's household.)"""
    approved = await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    reads: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        values = parameters.values() if isinstance(parameters, dict) else parameters or ()
        if statement.lstrip().upper().startswith("SELECT") and approved in map(str, values):
            reads.append(" ".join(statement.split()))

    async with build_runtime(settings, runs_here=True) as runtime:
        event.listen(Engine, "before_cursor_execute", note)
        try:
            tally = await run_until_done(runtime.rechecks, a_year_on(), poll_s=0.05)
        finally:
            event.remove(Engine, "before_cursor_execute", note)
    assert tally.count("queued") == 1
    assert len(reads) == 2 + 3, "\n".join(reads)


async def test_a_recheck_of_a_recipient_stopped_meanwhile_cannot_be_approved(
    office: Office,
) -> None:
    """Stopped while its re-check ran: an approval would record a benefit granted to a
    household the roll no longer pays. It is 409 and nothing is recorded; a rejection is
    still recorded (and changes nothing more)."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert ran.returncode == 0, ran.stderr
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    [recheck] = [
        item
        for item in (await office.caseworker.get("/v1/verifications")).json()["items"]
        if item["id"] != recipient["origin_verification_id"]
    ]
    stopped = await office.approver.post(
        f"/v1/recipients/{recipient['id']}/stop", json={"reason": "moved away"}
    )
    assert stopped.status_code == 200, stopped.text
    decision = f"/v1/verifications/{recheck['id']}/decision"

    approved = await office.approver.post(decision, json={"decision": "approve", "reason": "keep"})

    assert approved.status_code == 409, approved.text
    assert approved.json()["type"].endswith("/recipient-left")
    read = (await office.approver.get(f"/v1/verifications/{recheck['id']}")).json()
    assert read["decisions"] == []
    after = (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json()
    assert (after["status"], after["monthly_benefit"]) == ("left", recipient["monthly_benefit"])
    rejected = await office.approver.post(
        decision, json={"decision": "reject", "reason": "left the county"}
    )
    assert rejected.status_code == 201, rejected.text


async def test_a_recheck_a_later_one_superseded_is_decided_no_more(office: Office) -> None:
    """Two re-checks started, the older undecided: deciding it after the newer one would
    put the older report's benefit back (or take off a household the newer one kept)."""
    origin = await office.approve("530102", {"id_number": make_id_number("530102")})
    for as_of in (a_year_on(), add_months(a_year_on(), 12)):
        ran = await office.recheck("--as-of", as_of.isoformat())
        assert ran.returncode == 0, ran.stderr
    older, newer = await rechecks_of(office, origin)

    kept = await office.approver.post(
        f"/v1/verifications/{newer['id']}/decision", json={"decision": "approve", "reason": "ok"}
    )
    assert kept.status_code == 201, kept.text
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    for decision in ("approve", "reject"):
        stale = await office.approver.post(
            f"/v1/verifications/{older['id']}/decision",
            json={"decision": decision, "reason": "stale"},
        )
        assert stale.status_code == 409, stale.text
        assert stale.json()["type"].endswith("/recheck-superseded")
    after = (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json()
    assert (after["status"], after["approved_verification_id"]) == ("active", newer["id"])
    returned = await office.approver.post(
        f"/v1/verifications/{older['id']}/decision", json={"decision": "return", "reason": "old"}
    )
    assert returned.status_code == 201, returned.text
    # Not started again: the newer re-check's decision stands, and the schedule with it.
    assert (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json() == after


async def test_approving_a_recheck_in_another_class_reschedules_the_next(office: Office) -> None:
    """From half-yearly (other, dibao's default) to yearly (regular): the next re-check is
    a year after this one's due date, not half a year."""
    origin = await office.approve("530102", {"id_number": make_id_number("530102")})
    [approved] = (await office.approver.get("/v1/recipients")).json()["items"]
    due = date.fromisoformat(approved["next_recheck_on"])
    ran = await office.recheck("--as-of", due.isoformat())
    assert ran.returncode == 0, ran.stderr
    [recheck] = await rechecks_of(office, origin)
    [before] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert before["recheck_class"] == "other"
    assert before["next_recheck_on"] == add_months(due, 6).isoformat()

    decided = await office.approver.post(
        f"/v1/verifications/{recheck['id']}/decision",
        json={"decision": "approve", "reason": "ok", "recheck_class": "regular"},
    )

    assert decided.status_code == 201, decided.text
    after = (await office.approver.get(f"/v1/recipients/{before['id']}")).json()
    assert after["recheck_class"] == "regular"
    assert after["next_recheck_on"] == add_months(due, 12).isoformat()


@pytest.mark.parametrize("which", ["the approved application", "a finished re-check"])
async def test_withdrawing_a_finished_verification_ends_the_recipients_authorization(
    office: Office, which: str
) -> None:
    """The household takes its consent back after the report: no re-check may ask a
    partner under it. The recipient needs a new authorization; passes start nothing."""
    origin = await office.approve("530102", {"id_number": make_id_number("530102")})
    withdrawn_id = origin
    if which == "a finished re-check":
        ran = await office.recheck("--as-of", a_year_on().isoformat())
        assert ran.returncode == 0, ran.stderr
        [recheck] = await rechecks_of(office, origin)
        withdrawn_id = recheck["id"]

    withdrawn = await office.caseworker.post(
        f"/v1/verifications/{withdrawn_id}/withdraw", json={"reason": "授权已撤回"}
    )

    assert withdrawn.status_code == 200, withdrawn.text
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    today = office.today()
    assert recipient["consent"]["expires_on"] == (today - timedelta(days=1)).isoformat()
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    async with build_runtime(settings, runs_here=False) as runtime:
        held = await runtime.rechecks.run_due(add_months(a_year_on(), 12))
    assert (held.started, dict(held.outcomes)) == ([], {"needs_consent": 1})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["needs_new_consent"] is True


async def test_a_withdrawn_authorization_is_not_renewed_by_itself_or_one_signed_before(
    office: Office,
) -> None:
    """The household took its consent back: the authorization it withdrew, entered again,
    or one signed before the withdrawal, would let re-checks ask the partners against its
    will. Only a new document signed on or after the withdrawal's day renews it."""
    origin = await office.approve("530102", {"id_number": make_id_number("530102")})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    withdrawn_document = recipient["consent"]["document_id"]
    withdrawn = await office.caseworker.post(
        f"/v1/verifications/{origin}/withdraw", json={"reason": "授权已撤回"}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    today = office.today()
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["consent"]["withdrawn_on"] == today.isoformat()
    renew = f"/v1/recipients/{recipient['id']}/consent"

    again = await office.caseworker.post(
        renew, json={"document_id": withdrawn_document, "signed_on": today.isoformat()}
    )
    assert again.status_code == 422, again.text
    assert again.json()["errors"][0]["loc"] == ["body", "document_id"]
    assert "withdrawn" in again.json()["errors"][0]["msg"]
    before = (today - timedelta(days=1)).isoformat()
    earlier = await office.caseworker.post(
        renew, json={"document_id": "AUTH-0009", "signed_on": before}
    )
    assert earlier.status_code == 422, earlier.text
    assert earlier.json()["errors"][0]["loc"] == ["body", "signed_on"]
    # Refused twice, nothing changed: still withdrawn, no re-check may ask anyone.
    [unchanged] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert unchanged == recipient
    assert unchanged["needs_new_consent"] is True

    renewed = await office.caseworker.post(
        renew, json={"document_id": "AUTH-0009", "signed_on": today.isoformat()}
    )
    assert renewed.status_code == 200, renewed.text
    consent = renewed.json()["consent"]
    assert (consent["document_id"], consent["withdrawn_on"]) == ("AUTH-0009", None)
    assert renewed.json()["needs_new_consent"] is False


PENSIONER = {"status": "receiving", "monthly_amount": 300}
"""A pension well under the standard: eligible, and a record a re-check compares."""


async def test_withdrawing_a_finished_recheck_nobody_decided_makes_it_due_again(
    office: Office,
) -> None:
    """Its report awaited an approver, the recipient under review: withdrawn, it can be
    decided no more, so the re-check is held for a new authorization and the recipient is
    due again on the date it was due, as for a re-check withdrawn while it ran (it stayed
    under review half a year with nothing to decide)."""
    person = make_id_number("530102")
    origin = await office.approve("530102", {"id_number": person})
    await office.sandbox.post("/sandbox/people", json={"id_number": person, "pension": PENSIONER})
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert ran.returncode == 0, ran.stderr
    [recheck] = await rechecks_of(office, origin)
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "under_review"
    assert date.fromisoformat(recipient["next_recheck_on"]) > a_year_on()

    withdrawn = await office.caseworker.post(
        f"/v1/verifications/{recheck['id']}/withdraw", json={"reason": "授权已撤回"}
    )

    assert withdrawn.status_code == 200, withdrawn.text
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert date.fromisoformat(recipient["next_recheck_on"]) <= a_year_on()
    assert recipient["needs_new_consent"] is True
    renewed = await office.caseworker.post(
        f"/v1/recipients/{recipient['id']}/consent",
        json={"document_id": "AUTH-0004", "signed_on": office.today().isoformat()},
    )
    assert renewed.status_code == 200, renewed.text
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    async with build_runtime(settings, runs_here=False) as runtime:
        again = await runtime.rechecks.run_due(a_year_on())
    assert dict(again.outcomes) == {"queued": 1}
    assert [fresh.id for fresh in again.started] != [recheck["id"]]


async def _purge_older_than(office: Office, days: int) -> int:
    """The retention purge, as the service runs it, of what finished `days` days ago."""
    async with (
        build_runtime(office.service.settings, runs_here=False) as runtime,
        runtime.session_factory() as session,
    ):
        purged = await RetentionService().purge_batch(session, utcnow() - timedelta(days=days))
        await session.commit()
    return purged


async def _finished_days_ago(office: Office, verification_id: str, days: int) -> None:
    engine = create_engine(office.env["HEDUI_DATABASE_URL"])
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(
                update(Verification)
                .where(Verification.id == verification_id)
                .values(completed_at=utcnow() - timedelta(days=days))
            )
            await session.commit()
    finally:
        await engine.dispose()


async def test_the_approved_records_outlive_the_retention_period_while_on_the_roll(
    office: Office,
) -> None:
    """A re-check compares records with the approved verification's: purged after 180 days
    while the household is re-checked every 6 or 12 months, they would make every pension
    and car of the household look new at every re-check."""
    person = make_id_number("530102")
    origin = await office.approve(
        "530102", {"id_number": person, "pension": PENSIONER, "declared": 300}
    )
    await _finished_days_ago(office, origin, 200)

    assert await _purge_older_than(office, 180) == 0

    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 re-checked" in ran.stdout, ran.stdout
    assert "0 warnings raised" in ran.stdout, ran.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    stopped = await office.approver.post(
        f"/v1/recipients/{recipient['id']}/stop", json={"reason": "moved out of the county"}
    )
    assert stopped.status_code == 200, stopped.text
    # Off the roll, they go the way of any other; the re-check's own are not due yet.
    assert await _purge_older_than(office, 180) == 1


async def test_a_recheck_against_purged_records_compares_the_reports_and_says_so(
    office: Office,
) -> None:
    """The household withdrew its consent after the approval (the records are purged),
    then signed a new authorization: its re-check has nothing to compare record by record
    with. Not a warning per pension and car it has, not silence either."""
    person = make_id_number("530102")
    origin = await office.approve(
        "530102", {"id_number": person, "pension": PENSIONER, "declared": 300}
    )
    withdrawn = await office.caseworker.post(
        f"/v1/verifications/{origin}/withdraw", json={"reason": "授权已撤回"}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    renewed = await office.caseworker.post(
        f"/v1/recipients/{recipient['id']}/consent",
        json={
            "document_id": "AUTH-RENEWED-1",
            "signed_on": office.today().isoformat(),
        },
    )
    assert renewed.status_code == 200, renewed.text

    ran = await office.recheck("--as-of", a_year_on().isoformat())

    assert "1 re-checked" in ran.stdout, ran.stdout
    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    assert warning["code"] == "baseline_purged"
    assert warning["severity"] == "medium"
    assert warning["previous_verification_id"] == origin
    assert warning["before"] == [
        {
            "source": "household",
            "member": None,
            "fact": f"approved verification's records purged={date.today().isoformat()}",
        }
    ]
    # The re-check's own report finds the household as approved: it stays on the roll.
    assert warning["proposed_action"] == "keep"
    assert warning["review_verification_id"] is None
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "active"


async def _auditor(office: Office) -> httpx.AsyncClient:
    tokens = await api_tokens(office.env["HEDUI_DATABASE_URL"], "auditor", named="Panlong")
    return bearer_client(office.service.base_url, tokens["auditor"])


async def test_a_near_relative_registered_since_the_approval_is_a_warning(
    office: Office,
) -> None:
    """After the approval, the household's member is registered as the spouse of the
    village committee's director (近亲属备案). Nothing in the partners' records changed,
    but the re-check's own report is `review`: the roll must hear of it."""
    person = make_id_number("530102")
    await office.approve("530102", {"id_number": person})
    async with await _auditor(office) as auditor:
        registered = await auditor.post("/v1/near-relatives", json=near_relative_body(person))
        assert registered.status_code == 201, registered.text

    ran = await office.recheck("--as-of", a_year_on().isoformat())

    assert "1 warning raised" in ran.stdout, ran.stdout
    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    assert (warning["code"], warning["severity"], warning["proposed_action"]) == (
        "report_changed",
        "high",
        "review",
    )
    assert {"source": "report", "member": None, "fact": "finding=near_relative_registered"} in (
        warning["after"]
    )
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "under_review"
    assert person not in str(warning)


async def test_a_standard_raised_since_the_approval_is_a_warning_to_raise(office: Office) -> None:
    """The county raises its dibao standard from 640 to 700 after the approval: the
    re-check, under the policy in force that day, computes 700.00 where the roll pays
    640.00. The approver hears of it rather than the roll paying the old amount on."""
    await office.approve("530102", {"id_number": make_id_number("530102")})
    policies = Path(office.env["HEDUI_POLICY_DIR"])
    (policies / "530102.toml").write_text(
        '[[versions]]\nprogram = "dibao"\narea = "urban"\n'
        f"effective_from = {(date.today() + timedelta(days=1)).isoformat()}\n"
        "monthly_standard = 700\n",
        encoding="utf-8",
    )

    ran = await office.recheck("--as-of", a_year_on().isoformat())

    assert "1 warning raised" in ran.stdout, ran.stdout
    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    assert (warning["code"], warning["severity"], warning["proposed_action"]) == (
        "report_changed",
        "medium",
        "raise",
    )
    assert (warning["benefit_before"], warning["benefit_after"]) == ("640.00", "700.00")
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "under_review"


CAR = {"plate": "云A8K125", "type": "car", "registered_on": "2027-03-01", "value": 85000}


MOTORCYCLE = {
    "plate": "云A3M901",
    "type": "motorcycle",
    "registered_on": "2027-03-01",
    "value": 4000,
}
"""An exempt vehicle: a change a re-check reports that needs no approval (`keep`)."""


async def test_a_change_that_needs_no_approval_is_raised_once_not_at_every_recheck(
    office: Office,
) -> None:
    """A motorcycle bought after the approval changes nothing the approver decides: the
    first re-check raises it (`keep`) and the household stays active. The approved report
    stays the baseline, so the next re-check finds the same motorcycle again; the
    caseworker has it already, and it is not raised again. A second one is."""
    parent = make_id_number("530102")
    await office.approve("530102", {"id_number": parent})
    await office.sandbox.post(
        "/sandbox/people", json={"id_number": parent, "vehicles": [MOTORCYCLE]}
    )
    first = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 warning raised" in first.stdout, first.stdout
    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    assert (warning["code"], warning["proposed_action"]) == ("new_vehicle", "keep")

    two_years_on = add_months(date.today(), 24)
    second = await office.recheck("--as-of", two_years_on.isoformat())

    assert "1 re-checked" in second.stdout, second.stdout
    assert "0 warnings raised" in second.stdout, second.stdout
    assert len((await office.caseworker.get("/v1/warnings")).json()["items"]) == 1
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "active"

    another = {**MOTORCYCLE, "plate": "云A3M902", "registered_on": "2028-06-01"}
    await office.sandbox.post(
        "/sandbox/people", json={"id_number": parent, "vehicles": [MOTORCYCLE, another]}
    )
    third = await office.recheck("--as-of", add_months(date.today(), 36).isoformat())
    assert "1 warning raised" in third.stdout, third.stdout
    newest = (await office.caseworker.get("/v1/warnings")).json()["items"][0]
    assert newest["code"] == "new_vehicle"
    assert "云A3M902" in str(newest["after"]), newest["after"]


async def _returned_review(office: Office) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A household approved, found with a car a year on and put under review, and that
    re-check's report returned by the approver: (the member, the warning, the recipient
    as it was before the return)."""
    parent = make_id_number("530102")
    await office.approve("530102", {"id_number": parent})
    await office.sandbox.post("/sandbox/people", json={"id_number": parent, "vehicles": [CAR]})
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 warning raised" in ran.stdout, ran.stdout
    [warning] = (await office.caseworker.get("/v1/warnings")).json()["items"]
    [before] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert before["status"] == "under_review"
    returned = await office.approver.post(
        f"/v1/verifications/{warning['review_verification_id']}/decision",
        json={"decision": "return", "reason": "vehicle documents missing"},
    )
    assert returned.status_code == 201, returned.text
    return parent, warning, before


async def test_a_returned_recheck_is_started_again_and_its_decision_ends_the_review(
    office: Office,
) -> None:
    """The approver returns a re-check's report (documents missing): the household stays
    under review, due again on the date its re-check was due. A new verification of it is
    no way forward (409 already-on-the-roll, saying what is); the next pass starts a fresh
    re-check, and its approval ends the review."""
    parent, warning, before = await _returned_review(office)
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "under_review"
    due = date.fromisoformat(recipient["next_recheck_on"])
    assert due <= a_year_on() < date.fromisoformat(before["next_recheck_on"])

    body = verification_body([member(parent)], region_code="530102", as_of=None)
    created = await office.caseworker.post("/v1/verifications", json=body, headers=WAIT)
    assert created.status_code == 200, created.text
    refused = await office.approver.post(
        f"/v1/verifications/{created.json()['id']}/decision",
        json={
            "decision": "approve",
            "reason": "documents now complete",
            "monthly_benefit": "640.00",
        },
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/already-on-the-roll")
    assert "under review" in refused.json()["detail"]
    assert "next re-check pass" in refused.json()["detail"]

    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 re-checked" in ran.stdout, ran.stdout
    assert "1 warning raised" in ran.stdout, ran.stdout
    [fresh] = [
        item
        for item in (await office.caseworker.get("/v1/warnings")).json()["items"]
        if item["id"] != warning["id"]
    ]
    assert fresh["code"] == "new_vehicle"
    assert fresh["verification_id"] != warning["verification_id"]
    assert fresh["review_verification_id"] == fresh["verification_id"]
    decided = await office.approver.post(
        f"/v1/verifications/{fresh['review_verification_id']}/decision",
        json={
            "decision": "approve",
            "reason": "documents now complete",
            "monthly_benefit": "640.00",
        },
    )
    assert decided.status_code == 201, decided.text
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "active"
    assert recipient["approved_verification_id"] == fresh["verification_id"]
    assert recipient["next_recheck_on"] == before["next_recheck_on"]
    again = await office.recheck("--as-of", a_year_on().isoformat())
    assert f"Nothing is due on {a_year_on()} in any region" in again.stdout, again.stdout


async def test_a_returned_recheck_that_finds_nothing_ends_the_review(office: Office) -> None:
    """Returned, and the car is gone when the re-check is started again: the fresh
    re-check raises nothing, and the household is active again, not left under review
    with nothing to decide."""
    parent, _, _ = await _returned_review(office)
    await office.sandbox.post("/sandbox/people", json={"id_number": parent})

    ran = await office.recheck("--as-of", a_year_on().isoformat())

    assert "1 re-checked" in ran.stdout, ran.stdout
    assert "0 warnings raised" in ran.stdout, ran.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "active"
    assert date.fromisoformat(recipient["next_recheck_on"]) > a_year_on()


async def test_a_returned_recheck_whose_authorization_ran_out_waits_for_a_new_one(
    office: Office,
) -> None:
    """Returned, and the household's authorization runs out before the re-check is due
    again: the next pass asks no partner, and the household is listed as needing a new
    authorization (as a re-check that fell due after it expired is), not left looking as
    if the pass had merely passed it by. Once a new one is recorded, the re-check runs."""
    await _returned_review(office)
    engine = create_engine(office.env["HEDUI_DATABASE_URL"])
    async with create_session_factory(engine)() as session:
        await session.execute(update(Recipient).values(consent_expires_on=date.today()))
        await session.commit()
    await engine.dispose()

    held = await office.recheck("--as-of", a_year_on().isoformat())

    assert "0 re-checked, 1 need new consent" in held.stdout, held.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert (recipient["status"], recipient["needs_new_consent"]) == ("under_review", True)
    renewed = await office.caseworker.post(
        f"/v1/recipients/{recipient['id']}/consent",
        json={"document_id": "AUTH-0003", "signed_on": date.today().isoformat()},
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["needs_new_consent"] is True  # until the re-check has run
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 re-checked" in ran.stdout, ran.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["needs_new_consent"] is False


async def test_a_later_recheck_that_finds_nothing_ends_a_review_left_undecided(
    office: Office,
) -> None:
    """Under review since a re-check found a car, undecided when the next one is due, and
    the car gone by then: the later re-check finds nothing to decide, and the household is
    active again (the older re-check, superseded, can only be returned)."""
    parent = make_id_number("530102")
    await office.approve("530102", {"id_number": parent})
    await office.sandbox.post("/sandbox/people", json={"id_number": parent, "vehicles": [CAR]})
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert "1 warning raised" in ran.stdout, ran.stdout
    await office.sandbox.post("/sandbox/people", json={"id_number": parent})

    later = await office.recheck("--as-of", add_months(a_year_on(), 12).isoformat())

    assert "1 re-checked" in later.stdout, later.stdout
    assert "0 warnings raised" in later.stdout, later.stdout
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "active"


async def test_a_later_recheck_withdrawn_before_its_decision_supersedes_nothing(
    office: Office,
) -> None:
    """A re-check finds a car and waits for the approver; the next one runs, and the
    household withdraws its consent to it. That later re-check has no report to decide:
    the older one's decision was refused as superseded, and the household stayed on the
    roll under review with nothing the approver could decide."""
    parent = make_id_number("530102")
    origin = await office.approve("530102", {"id_number": parent})
    await office.sandbox.post("/sandbox/people", json={"id_number": parent, "vehicles": [CAR]})
    for as_of in (a_year_on(), add_months(a_year_on(), 12)):
        ran = await office.recheck("--as-of", as_of.isoformat())
        assert ran.returncode == 0, ran.stderr
    older, newer = await rechecks_of(office, origin)
    withdrawn = await office.caseworker.post(
        f"/v1/verifications/{newer['id']}/withdraw", json={"reason": "授权已撤回"}
    )
    assert withdrawn.status_code == 200, withdrawn.text

    decided = await office.approver.post(
        f"/v1/verifications/{older['id']}/decision",
        json={"decision": "reject", "reason": "owns a car"},
    )

    assert decided.status_code == 201, decided.text
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert recipient["status"] == "left"


async def test_a_recheck_from_the_command_line_is_in_the_audit_trail(office: Office) -> None:
    """It asks partners about a household: an auditor searching for a member finds who
    started it, and the scheduler's identity made on the way is recorded too."""
    person = make_id_number("530102")
    await office.approve("530102", {"id_number": person})

    ran = await office.recheck("--as-of", a_year_on().isoformat())

    assert "1 re-checked" in ran.stdout, ran.stdout
    url = office.env["HEDUI_DATABASE_URL"]
    [run] = await audit_events(url, "recheck.run")
    [key] = await audit_events(url, "apikey.create")
    user = f"cli:{getpass.getuser()}"
    assert (run.actor_name, run.object_type, run.object_region) == (user, "verification", "530102")
    assert run.detail is not None
    assert run.detail.startswith("recipient ")
    assert (key.actor_name, key.object_type) == (user, "api_key")
    auditor_token = (await api_tokens(url, "auditor", named="Panlong"))["auditor"]
    async with bearer_client(office.service.base_url, auditor_token) as auditor:
        found = await auditor.post(
            "/v1/audit/search", json={"id_number": person, "action": "recheck.run"}
        )
    assert [event["object_id"] for event in found.json()["items"]] == [run.object_id]


async def test_the_periodic_pass_records_its_rechecks_as_the_scheduler(office: Office) -> None:
    await office.approve("530102", {"id_number": make_id_number("530102")})
    settings = office.service.settings.model_copy(
        update={"partner_base_url": f"{office.service.base_url}/sandbox"}
    )
    async with build_runtime(settings, runs_here=False) as runtime:
        done = await runtime.rechecks.run_due(a_year_on())

    url = office.env["HEDUI_DATABASE_URL"]
    [run] = await audit_events(url, "recheck.run")
    [key] = await audit_events(url, "apikey.create")
    assert run.object_id == done.started[0].id
    assert (run.actor_name, run.role) == ("re-check scheduler", "system")
    assert run.actor_key_id == key.object_id  # its own key, whose creation is recorded
    assert (key.actor_name, key.role) == ("re-check scheduler", "system")
