"""A household on the roll whose members changed (a birth, a death, a member moving out):
its new verification approved with the recipient it changes, and every way that must be
refused, over real HTTP and the sandbox agencies."""

import asyncio
from typing import Any

import httpx
import pytest

from service.recipient.calendar import add_months
from tests.e2e.office import (
    Office,
    a_year_on,
    audit_events,
    bearer_client,
    outbox_data,
    rechecks_of,
)
from tests.factories import make_id_number
from tests.stored import api_tokens


def _changed(verification_id: str, recipient_id: str, **more: Any) -> dict[str, Any]:
    """An approval of a household on the roll whose members changed."""
    return {
        "decision": "approve",
        "reason": "a child born",
        "recipient_id": recipient_id,
        **more,
    }


async def _decided(office: Office, verification_id: str, body: dict[str, Any]) -> httpx.Response:
    return await office.approver.post(f"/v1/verifications/{verification_id}/decision", json=body)


async def test_a_household_whose_members_changed_is_approved_in_its_place(office: Office) -> None:
    """A child born: the household is verified with its three members and the approval
    names the recipient. The roll keeps one recipient (its id, its origin) whose household
    is now the new one: the next re-check asks about three people."""
    parent, child = make_id_number("530102"), make_id_number("530102", birth="20100101")
    database_url = office.env["HEDUI_DATABASE_URL"]
    integrator = (await api_tokens(database_url, "integrator"))["integrator"]
    async with bearer_client(office.service.base_url, integrator) as client:
        subscribed = await client.post(
            "/v1/webhooks",
            json={
                "url": "http://127.0.0.1:9/cases",
                "events": ["decision.recorded"],
                "secret": "sixteen-characters-at-least",
            },
        )
        assert subscribed.status_code == 201, subscribed.text
    origin = await office.approve("530102", {"id_number": parent}, {"id_number": child})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    baby = make_id_number("530102", birth="20260301")
    grown = await office.verify(
        "530102", {"id_number": parent}, {"id_number": child}, {"id_number": baby}
    )

    unnamed = await office.decide(grown, "approve")
    assert unnamed.status_code == 409, unnamed.text
    assert unnamed.json()["type"].endswith("/already-on-the-roll")
    assert "recipient_id" in unnamed.json()["detail"]
    approved = await _decided(office, grown, _changed(grown, recipient["id"]))

    assert approved.status_code == 201, approved.text
    assert approved.json()["recipient_id"] == recipient["id"]
    [after] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert after["id"] == recipient["id"]
    assert after["origin_verification_id"] == origin
    assert after["approved_verification_id"] == grown
    assert after["status"] == "active"
    assert after["approved_on"] == office.today().isoformat()
    assert after["next_recheck_on"] == add_months(office.today(), 6).isoformat()
    read = (await office.approver.get(f"/v1/verifications/{grown}")).json()
    assert read["decisions"][0]["recipient_id"] == recipient["id"]
    # The trail says which household on the roll each decision about a change was about.
    decided = {
        event.object_id: (event.outcome, event.detail)
        for event in await audit_events(database_url, "decision.record")
    }
    about = f"change of the household of recipient {recipient['id']}"
    assert decided[grown] == ("ok", about)
    assert decided[origin] == ("ok", None)
    # A receiver of the webhook can tell a change from a household new to the roll.
    recorded = {
        data["verification_id"]: (data["recipient_id"], data["household_change"])
        for data in await outbox_data(database_url, "decision.recorded")
    }
    assert recorded == {origin: (recipient["id"], False), grown: (recipient["id"], True)}

    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert ran.returncode == 0, ran.stderr
    listed = (await office.caseworker.get("/v1/verifications", params={"limit": 200})).json()
    [recheck] = [item for item in listed["items"] if item["id"] not in (origin, grown)]
    assert len(recheck["members"]) == 3


async def test_a_member_who_moved_out_may_be_approved_in_a_household_of_their_own(
    office: Office,
) -> None:
    """The household without its grown child is the recipient's from the change on; the
    child, on no household of the roll any more, is approved with their own."""
    parent, child = make_id_number("530102"), make_id_number("530102", birth="20000101")
    await office.approve("530102", {"id_number": parent}, {"id_number": child})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    own = await office.verify("530102", {"id_number": child})
    assert (await office.decide(own, "approve")).status_code == 409  # paid with their parent

    alone = await office.verify("530102", {"id_number": parent})
    changed = await _decided(office, alone, _changed(alone, recipient["id"]))
    assert changed.status_code == 201, changed.text
    moved = await office.decide(own, "approve")

    assert moved.status_code == 201, moved.text
    listed = (await office.approver.get("/v1/recipients")).json()["items"]
    assert sorted(item["approved_verification_id"] for item in listed) == sorted([alone, own])


async def test_a_change_is_refused_where_it_names_no_household_of_the_roll_to_change(
    office: Office,
) -> None:
    """Each refusal names `recipient_id` (or is 409 for a recipient off the roll) and
    records nothing: the verification stays undecided and the recipients as they were."""
    here = make_id_number("530102")
    await office.approve("530102", {"id_number": here})
    [stopped] = (await office.approver.get("/v1/recipients")).json()["items"]
    assert (
        await office.approver.post(
            f"/v1/recipients/{stopped['id']}/stop", json={"reason": "moved away"}
        )
    ).status_code == 200
    await office.approve("530103", {"id_number": make_id_number("530103")})
    other_county = next(
        item["id"]
        for item in (await office.approver.get("/v1/recipients")).json()["items"]
        if item["region_code"] == "530103"
    )
    kept = make_id_number("530102")
    await office.approve("530102", {"id_number": kept})
    [strangers_to] = [
        item["id"]
        for item in (await office.approver.get("/v1/recipients")).json()["items"]
        if item["status"] == "active" and item["region_code"] == "530102"
    ]
    roll_before = (await office.approver.get("/v1/recipients")).json()
    household = await office.verify("530102", {"id_number": make_id_number("530102")})

    for body, status, said in (
        (_changed(household, "not-a-uuid"), 422, "UUID"),
        (_changed(household, "3f2b1c9e-5a47-4d2e-9c1b-8e7f6a5d4c3b"), 422, "no recipient"),
        (_changed(household, other_county), 422, "county 530103's roll"),
        ({**_changed(household, other_county), "decision": "reject"}, 422, "only an approval"),
        (_changed(household, stopped["id"]), 409, "left the roll on"),
        (_changed(household, strangers_to), 422, "no member of this household"),
    ):
        refused = await _decided(office, household, body)
        assert refused.status_code == status, refused.text
        assert said in refused.text
        if status == 422:
            assert refused.json()["errors"][0]["loc"] == ["body", "recipient_id"]
        assert here not in refused.text

    read = (await office.approver.get(f"/v1/verifications/{household}")).json()
    assert read["decisions"] == []
    alike = await office.verify("530102", {"id_number": kept})
    same_members = await _decided(office, alike, _changed(alike, strangers_to))
    assert same_members.status_code == 422, same_members.text
    assert "the members on the roll already" in same_members.text
    assert (await office.approver.get("/v1/recipients")).json() == roll_before


async def test_a_change_cannot_take_a_member_of_another_household_of_the_roll(
    office: Office,
) -> None:
    mine, theirs = make_id_number("530102"), make_id_number("530102")
    my_origin = await office.approve("530102", {"id_number": mine})
    await office.approve("530102", {"id_number": theirs})
    [mine_on_the_roll] = [
        item
        for item in (await office.approver.get("/v1/recipients")).json()["items"]
        if item["origin_verification_id"] == my_origin
    ]
    both = await office.verify("530102", {"id_number": mine}, {"id_number": theirs})

    refused = await _decided(office, both, _changed(both, mine_on_the_roll["id"]))

    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/already-on-the-roll")
    assert theirs[-4:] in refused.json()["detail"]


async def test_a_recheck_begun_before_the_household_changed_is_decided_no_more(
    office: Office,
) -> None:
    """The re-check compared the household approved before; after the change the roll pays
    the new one, and deciding the old comparison would undo it (approve) or take the new
    household off on stale facts (reject). Returning it is still recorded."""
    parent = make_id_number("530102")
    origin = await office.approve("530102", {"id_number": parent})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert ran.returncode == 0, ran.stderr
    [recheck] = await rechecks_of(office, origin)

    with_baby = await office.verify(
        "530102", {"id_number": parent}, {"id_number": make_id_number("530102", birth="20260301")}
    )
    refused_on_a_recheck = await _decided(
        office, recheck["id"], _changed(recheck["id"], recipient["id"])
    )
    assert refused_on_a_recheck.status_code == 422, refused_on_a_recheck.text
    assert refused_on_a_recheck.json()["errors"][0]["loc"] == ["body", "recipient_id"]
    changed = await _decided(office, with_baby, _changed(with_baby, recipient["id"]))
    assert changed.status_code == 201, changed.text

    for decision in ("approve", "reject"):
        stale = await _decided(office, recheck["id"], {"decision": decision, "reason": "stale"})
        assert stale.status_code == 409, stale.text
        assert stale.json()["type"].endswith("/recheck-superseded")
        assert "household changed" in stale.json()["detail"]
    after = (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json()
    assert (after["status"], after["approved_verification_id"]) == ("active", with_baby)
    returned = await _decided(office, recheck["id"], {"decision": "return", "reason": "old"})
    assert returned.status_code == 201, returned.text
    # Not due again on the old re-check's date: the change set the schedule.
    kept = (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json()
    assert kept["next_recheck_on"] == after["next_recheck_on"]
    assert kept["next_recheck_on"] == add_months(office.today(), 6).isoformat()


async def test_a_change_made_before_the_roll_last_looked_at_the_household_is_stale(
    office: Office,
) -> None:
    """A verification older than the approval of the household on the roll (or than a
    re-check of it) holds older facts: approving it as a change would undo what was
    decided or found since."""
    parent, child = make_id_number("530102"), make_id_number("530102", birth="20100101")
    older = await office.verify("530102", {"id_number": parent}, {"id_number": child})
    await office.approve("530102", {"id_number": parent})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]

    stale = await _decided(office, older, _changed(older, recipient["id"]))
    assert stale.status_code == 409, stale.text
    assert stale.json()["type"].endswith("/stale-change")

    newer = await office.verify("530102", {"id_number": parent}, {"id_number": child})
    ran = await office.recheck("--as-of", a_year_on().isoformat())
    assert ran.returncode == 0, ran.stderr
    overtaken = await _decided(office, newer, _changed(newer, recipient["id"]))
    assert overtaken.status_code == 409, overtaken.text
    assert overtaken.json()["type"].endswith("/stale-change")
    after = (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json()
    assert after["approved_verification_id"] == recipient["approved_verification_id"]


async def test_a_withdrawn_authorization_does_not_come_back_with_a_change(office: Office) -> None:
    """The household took its consent back: a change whose verification was made under the
    authorization withdrawn (signed before the withdrawal) would ask partners under it."""
    parent = make_id_number("530102")
    origin = await office.approve("530102", {"id_number": parent})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    withdrawn = await office.caseworker.post(
        f"/v1/verifications/{origin}/withdraw", json={"reason": "授权已撤回"}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    with_baby = await office.verify(
        "530102", {"id_number": parent}, {"id_number": make_id_number("530102", birth="20260301")}
    )

    refused = await _decided(office, with_baby, _changed(with_baby, recipient["id"]))

    assert refused.status_code == 409, refused.text
    assert "authorization on record was withdrawn" in refused.json()["detail"]
    after = (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json()
    assert after["needs_new_consent"] is True
    assert after["approved_verification_id"] == origin


async def test_a_changes_reason_names_no_member_of_the_household_it_replaces(
    office: Office,
) -> None:
    """ "王秀英 died" is what an approver would write, about a member who is in the household
    on the roll and not in the new one: refused as a name in any free text is."""
    parent = make_id_number("530102")
    spouse = make_id_number("530102", birth="19500101")
    await office.approve(
        "530102", {"id_number": parent, "name": "李建华"}, {"id_number": spouse, "name": "王秀英"}
    )
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    alone = await office.verify("530102", {"id_number": parent, "name": "李建华"})

    named = await _decided(
        office, alone, _changed(alone, recipient["id"], reason="王秀英 died 2026-11-30")
    )

    assert named.status_code == 422, named.text
    assert named.json()["errors"][0]["loc"] == ["body", "reason"]
    assert "王秀英" not in named.text
    unnamed = await _decided(
        office, alone, _changed(alone, recipient["id"], reason="the spouse died 2026-11-30")
    )
    assert unnamed.status_code == 201, unnamed.text


async def test_a_recheck_running_when_the_household_changes_warns_of_nothing(
    office: Office,
) -> None:
    """The re-check asked about the household approved before; the change, approved while it
    ran, is what the roll pays on: comparing the two would raise `member_added` and reopen
    a review of a household nobody re-checked. It ends raising nothing."""
    parent = make_id_number("530102")
    await office.approve("530102", {"id_number": parent})
    [recipient] = (await office.approver.get("/v1/recipients")).json()["items"]
    slow = await office.sandbox.put(
        "/sandbox/faults/vehicles", json={"mode": "slow", "latency_ms": 4000}
    )
    assert slow.status_code < 300, slow.text
    rechecking = asyncio.create_task(office.recheck("--as-of", a_year_on().isoformat()))
    try:
        for _ in range(100):
            listed = (await office.caseworker.get("/v1/verifications", params={"limit": 10})).json()
            if len(listed["items"]) == 2:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the re-check did not start")
        await office.sandbox.delete("/sandbox/faults/vehicles")  # its call is on its way
        with_baby = await office.verify(
            "530102",
            {"id_number": parent},
            {"id_number": make_id_number("530102", birth="20260301")},
        )
        changed = await _decided(office, with_baby, _changed(with_baby, recipient["id"]))
        assert changed.status_code == 201, changed.text
        assert not rechecking.done()  # the change came while the re-check ran
    finally:
        ran = await rechecking
    assert ran.returncode == 0, ran.stderr

    assert (await office.caseworker.get("/v1/warnings")).json()["items"] == []
    after = (await office.approver.get(f"/v1/recipients/{recipient['id']}")).json()
    assert (after["status"], after["approved_verification_id"]) == ("active", with_baby)
