"""The roll: an approval puts a household on it; listing, filters, stopping, paging."""

import asyncio
import json
from datetime import date
from typing import Any

import httpx

from service.recipient.calendar import add_months, next_after
from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, verification_body

WAIT = {"Prefer": "wait=15"}


async def approved_household(
    http: httpx.AsyncClient,
    caseworker: httpx.AsyncClient,
    approver: httpx.AsyncClient,
    *,
    region_code: str = "530102",
    program: str = "dibao",
    decision: dict[str, Any] | None = None,
    people: int = 1,
    reference: str = "case-test",
) -> tuple[str, list[str]]:
    """A verified household (nothing on record at any agency) and the approval's response."""
    ids = [make_id_number(region_code) for _ in range(people)]
    for id_number in ids:
        assert (await http.post("/sandbox/people", json={"id_number": id_number})).status_code < 300
    body = verification_body(
        [
            member(id_number, relation="applicant" if i == 0 else "child")
            for i, id_number in enumerate(ids)
        ],
        region_code=region_code,
        program=program,
        as_of=None,
        reference=reference,
    )
    created = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
    assert created.status_code == 200, created.text
    verification_id = created.json()["id"]
    assert created.json()["recommendation"] == "eligible"
    decided = await approver.post(
        f"/v1/verifications/{verification_id}/decision",
        json=decision or {"decision": "approve", "reason": "documents checked"},
    )
    assert decided.status_code == 201, decided.text
    return verification_id, ids


async def roll(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/recipients", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def submitted(
    http: httpx.AsyncClient,
    caseworker: httpx.AsyncClient,
    *,
    program: str = "dibao",
    fault: str | None = None,
) -> dict[str, Any]:
    """A one-member household in 530102, verified to the end; with `fault`, the vehicles
    source answers so meanwhile (`garbage`: a review report)."""
    id_number = make_id_number("530102")
    assert (await http.post("/sandbox/people", json={"id_number": id_number})).status_code < 300
    body = verification_body([member(id_number)], region_code="530102", program=program, as_of=None)
    if fault is not None:
        assert (await http.put("/sandbox/faults/vehicles", json={"mode": fault})).is_success
    try:
        created = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
    finally:
        if fault is not None:
            await http.delete("/sandbox/faults/vehicles")
    assert created.status_code == 200, created.text
    verification: dict[str, Any] = created.json()
    return verification


class TestApproval:
    async def test_an_approval_puts_the_household_on_the_roll(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        verification_id, ids = await approved_household(http, caseworker, approver)
        [recipient] = [
            r for r in await roll(approver) if r["origin_verification_id"] == verification_id
        ]
        assert recipient["status"] == "active"
        assert recipient["recheck_class"] == "other"  # dibao default: half-yearly
        assert recipient["monthly_benefit"] == "640.00"
        assert recipient["approved_verification_id"] == verification_id
        approved_on = date.fromisoformat(recipient["approved_on"])
        assert recipient["next_recheck_on"] == add_months(approved_on, 6).isoformat()
        assert recipient["members"][0]["id_number"] == ids[0][:6] + "********" + ids[0][-4:]
        assert ids[0] not in str(recipient)
        assert recipient["consent"] == {
            "document_id": "AUTH-0001",
            "signed_on": "2026-11-01",
            "expires_on": None,
            "withdrawn_on": None,
        }

    async def test_a_person_on_the_roll_is_not_approved_onto_it_again(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        first, ids = await approved_household(http, caseworker, approver, people=2)
        # The same child files again, with a new applicant, in another county.
        other = make_id_number("530103")
        assert (await http.post("/sandbox/people", json={"id_number": other})).status_code < 300
        body = verification_body(
            [member(other, relation="applicant"), member(ids[1], relation="child")],
            region_code="530103",
            as_of=None,
        )
        elsewhere = await api_client(role="caseworker", region="53")
        created = await elsewhere.post("/v1/verifications", json=body, headers=WAIT)
        assert created.json()["recommendation"] == "eligible", created.text
        county_approver = await api_client(role="approver", region="53")

        refused = await county_approver.post(
            f"/v1/verifications/{created.json()['id']}/decision",
            json={"decision": "approve", "reason": "documents checked"},
        )

        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"].endswith("/already-on-the-roll")
        assert ids[1][:6] + "********" + ids[1][-4:] in problem["detail"]  # masked
        assert ids[1] not in refused.text
        # Nothing was written: no decision, no second recipient; returning it still works.
        masked = ids[1][:6] + "********" + ids[1][-4:]
        on_roll = [
            r["origin_verification_id"]
            for r in await roll(county_approver)
            if masked in [m["id_number"] for m in r["members"]]
        ]
        assert first in on_roll
        assert created.json()["id"] not in on_roll
        returned = await county_approver.post(
            f"/v1/verifications/{created.json()['id']}/decision",
            json={"decision": "return", "reason": "already receives dibao"},
        )
        assert returned.status_code == 201, returned.text

    async def test_two_approvals_at_once_put_a_shared_member_on_the_roll_once(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        """The check for a member on the roll and the new recipient are one step: two
        approvals deciding together cannot both find the roll without the other's."""
        caseworker = await api_client(role="caseworker", region="530102")
        approvers = [await api_client(role="approver", region="530102") for _ in range(2)]
        for _ in range(3):
            shared = make_id_number("530102")
            ids = [shared, make_id_number("530102"), make_id_number("530102")]
            for id_number in ids:
                created = await http.post("/sandbox/people", json={"id_number": id_number})
                assert created.status_code < 300
            verification_ids = []
            for applicant in ids[1:]:
                body = verification_body(
                    [member(applicant, relation="applicant"), member(shared, relation="child")],
                    region_code="530102",
                    as_of=None,
                )
                created = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
                assert created.json()["recommendation"] == "eligible", created.text
                verification_ids.append(created.json()["id"])

            decided = await asyncio.gather(
                *(
                    approver.post(
                        f"/v1/verifications/{verification_id}/decision",
                        json={"decision": "approve", "reason": "documents checked"},
                    )
                    for approver, verification_id in zip(approvers, verification_ids, strict=True)
                )
            )

            assert sorted(response.status_code for response in decided) == [201, 409], [
                response.text for response in decided
            ]
            masked = shared[:6] + "********" + shared[-4:]
            holding = [
                r
                for r in await roll(approvers[0], status="active")
                if masked in [m["id_number"] for m in r["members"]]
            ]
            assert len(holding) == 1

    async def test_a_report_without_a_benefit_is_approved_with_the_one_granted(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        created = await submitted(http, caseworker, fault="garbage")  # a source's garbage
        assert created["recommendation"] == "review", created
        verification_id = created["id"]
        url = f"/v1/verifications/{verification_id}/decision"

        refused = await approver.post(url, json={"decision": "approve", "reason": "查验无误"})
        odd = [
            await approver.post(
                url, json={"decision": "approve", "reason": "查验无误", "monthly_benefit": amount}
            )
            for amount in ("0", 0, "-0", "1e3", "1_000", "３００", " 12 ", "+5", ".5", "1000000.01")
        ]

        assert [response.status_code for response in odd] == [422] * len(odd)
        assert {tuple(r.json()["errors"][0]["loc"]) for r in odd} == {("body", "monthly_benefit")}
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == ["body", "monthly_benefit"]
        assert "review" in refused.json()["detail"]
        # Nothing written: no decision, nobody on the roll.
        read = await approver.get(f"/v1/verifications/{verification_id}")
        assert read.json()["decisions"] == []
        assert verification_id not in [r["origin_verification_id"] for r in await roll(approver)]

        approved = await approver.post(
            url, json={"decision": "approve", "reason": "查验无误", "monthly_benefit": "412.5"}
        )

        assert approved.status_code == 201, approved.text
        assert approved.json()["monthly_benefit"] == "412.50"
        [recipient] = [
            r for r in await roll(approver) if r["origin_verification_id"] == verification_id
        ]
        assert recipient["monthly_benefit"] == "412.50"
        read = (await approver.get(f"/v1/verifications/{verification_id}")).json()
        assert read["decisions"][0]["monthly_benefit"] == "412.50"

    async def test_a_computed_benefit_is_the_one_granted(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        created = await submitted(http, caseworker)
        assert created["recommendation"] == "eligible", created
        url = f"/v1/verifications/{created['id']}/decision"

        other = await approver.post(
            url, json={"decision": "approve", "reason": "ok", "monthly_benefit": "999.00"}
        )
        rejected_with_one = await approver.post(
            url, json={"decision": "reject", "reason": "no", "monthly_benefit": "640.00"}
        )
        same = await approver.post(
            url, json={"decision": "approve", "reason": "ok", "monthly_benefit": "640.00"}
        )

        assert other.status_code == 422, other.text
        assert other.json()["errors"][0]["loc"] == ["body", "monthly_benefit"]
        # No amount in an error message (read without `instance`, whose random id may hold
        # the digits).
        said = json.dumps({k: v for k, v in other.json().items() if k != "instance"})
        assert "640" not in said
        assert "999" not in said
        assert rejected_with_one.status_code == 422, rejected_with_one.text
        assert rejected_with_one.json()["errors"][0]["loc"] == ["body", "monthly_benefit"]
        assert same.status_code == 201, same.text
        assert same.json()["monthly_benefit"] == "640.00"  # the decision records it

    async def test_linshi_grants_no_monthly_benefit(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        created = await submitted(http, caseworker, program="linshi")
        url = f"/v1/verifications/{created['id']}/decision"

        refused = await approver.post(
            url, json={"decision": "approve", "reason": "ok", "monthly_benefit": "100.00"}
        )

        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == ["body", "monthly_benefit"]
        assert "linshi" in refused.json()["detail"]
        classed = await approver.post(
            url, json={"decision": "approve", "reason": "ok", "recheck_class": "regular"}
        )
        assert classed.status_code == 422, classed.text
        assert classed.json()["errors"][0]["loc"] == ["body", "recheck_class"]

    async def test_a_linshi_approval_grants_the_reports_one_off_amount(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        created = await submitted(http, caseworker, program="linshi")
        assert created["recommendation"] == "eligible", created
        report = (await approver.get(f"/v1/verifications/{created['id']}/report")).json()
        computed = report["benefit"]["one_off_amount"]
        assert computed not in (None, "0.00")
        url = f"/v1/verifications/{created['id']}/decision"

        other = await approver.post(
            url, json={"decision": "approve", "reason": "ok", "one_off_amount": "1.00"}
        )
        same = await approver.post(url, json={"decision": "approve", "reason": "ok"})

        assert other.status_code == 422, other.text
        assert other.json()["errors"][0]["loc"] == ["body", "one_off_amount"]
        assert computed not in other.text
        assert same.status_code == 201, same.text
        assert (same.json()["one_off_amount"], same.json()["monthly_benefit"]) == (computed, None)
        read = (await approver.get(f"/v1/verifications/{created['id']}")).json()
        assert read["decisions"][0]["one_off_amount"] == computed
        assert created["id"] not in [r["origin_verification_id"] for r in await roll(approver)]

    async def test_a_linshi_report_without_an_amount_is_approved_with_the_one_granted(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        created = await submitted(http, caseworker, program="linshi", fault="garbage")
        assert created["recommendation"] == "review", created
        url = f"/v1/verifications/{created['id']}/decision"

        refused = await approver.post(url, json={"decision": "approve", "reason": "查验无误"})
        rejected_with_one = await approver.post(
            url, json={"decision": "reject", "reason": "no", "one_off_amount": "1500"}
        )
        odd = await approver.post(
            url, json={"decision": "approve", "reason": "ok", "one_off_amount": "1e3"}
        )

        for response in (refused, rejected_with_one, odd):
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["loc"] == ["body", "one_off_amount"]
        assert "review" in refused.json()["detail"]
        assert (await approver.get(f"/v1/verifications/{created['id']}")).json()["decisions"] == []

        approved = await approver.post(
            url, json={"decision": "approve", "reason": "查验无误", "one_off_amount": "1500"}
        )

        assert approved.status_code == 201, approved.text
        assert approved.json()["one_off_amount"] == "1500.00"

    async def test_dibao_grants_no_one_off_amount(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        created = await submitted(http, caseworker)
        url = f"/v1/verifications/{created['id']}/decision"

        refused = await approver.post(
            url, json={"decision": "approve", "reason": "ok", "one_off_amount": "100.00"}
        )

        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == ["body", "one_off_amount"]
        assert "monthly" in refused.json()["detail"]

    async def test_the_approver_chooses_the_regular_class(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        verification_id, _ = await approved_household(
            http,
            caseworker,
            approver,
            decision={"decision": "approve", "reason": "ok", "recheck_class": "regular"},
        )
        [recipient] = [
            r
            for r in await roll(approver, recheck_class="regular")
            if r["origin_verification_id"] == verification_id
        ]
        approved_on = date.fromisoformat(recipient["approved_on"])
        assert recipient["next_recheck_on"] == add_months(approved_on, 12).isoformat()

    async def test_a_rejection_puts_nobody_on_the_roll(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        verification_id, _ = await approved_household(
            http, caseworker, approver, decision={"decision": "reject", "reason": "no"}
        )
        assert verification_id not in {
            r["origin_verification_id"] for r in await roll(approver, limit=200)
        }

    async def test_an_unknown_class_is_422_naming_the_field(
        self, api_client: ClientFactory
    ) -> None:
        approver = await api_client(role="approver", region="530102")
        response = await approver.post(
            "/v1/verifications/nope/decision",
            json={"decision": "approve", "reason": "x", "recheck_class": "weekly"},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "recheck_class"]


class TestRoll:
    async def test_filters_scope_and_paging(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530111")
        approver = await api_client(role="approver", region="530111")
        made = [
            (await approved_household(http, caseworker, approver, region_code="530111"))[0]
            for _ in range(3)
        ]
        first = await approver.get("/v1/recipients", params={"limit": 2})
        assert first.status_code == 200
        page = first.json()
        second = await approver.get(
            "/v1/recipients", params={"limit": 2, "cursor": page["next_cursor"]}
        )
        listed = [r["origin_verification_id"] for r in page["items"] + second.json()["items"]]
        assert listed == list(reversed(made))
        assert second.json()["next_cursor"] is None
        # Another county's approver sees none of them, even when asking for this county.
        elsewhere = await api_client(role="approver", region="530102")
        assert made[0] not in {
            r["origin_verification_id"] for r in await roll(elsewhere, region_code="530111")
        }
        assert await roll(approver, program="tekun") == []
        assert len(await roll(approver, due_before="2099-01-01")) == 3
        assert await roll(approver, due_before="2026-01-01") == []

    async def test_a_case_reference_finds_its_household_and_a_withdrawal_asks_for_consent(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530126")
        approver = await api_client(role="approver", region="530126")
        kept, _ = await approved_household(
            http, caseworker, approver, region_code="530126", reference="case-kept"
        )
        gone, _ = await approved_household(
            http, caseworker, approver, region_code="530126", reference="case-gone"
        )
        [found] = await roll(approver, reference="case-gone")
        assert (found["origin_verification_id"], found["needs_new_consent"]) == (gone, False)
        assert await roll(approver, reference="case-none") == []
        assert await roll(approver, needs_new_consent="true") == []

        withdrawn = await caseworker.post(
            f"/v1/verifications/{gone}/withdraw", json={"reason": "授权已撤回"}
        )
        assert withdrawn.status_code == 200, withdrawn.text

        # Listed as needing a new authorization at once, not at its next re-check.
        [found] = await roll(approver, reference="case-gone")
        assert found["needs_new_consent"] is True
        one = await approver.get(f"/v1/recipients/{found['id']}")
        assert one.json()["needs_new_consent"] is True
        assert [r["id"] for r in await roll(approver, needs_new_consent="true")] == [found["id"]]
        others = await roll(approver, needs_new_consent="false")
        assert [r["origin_verification_id"] for r in others] == [kept]

        # Signed on the day of the withdrawal (the service's day): a new authorization.
        renewed = await caseworker.post(
            f"/v1/recipients/{found['id']}/consent",
            json={"document_id": "AUTH-0009", "signed_on": found["consent"]["withdrawn_on"]},
        )
        assert renewed.status_code == 200, renewed.text
        assert renewed.json()["needs_new_consent"] is False
        assert await roll(approver, needs_new_consent="true") == []

        stopped = await approver.post(
            f"/v1/recipients/{found['id']}/stop", json={"reason": "moved away"}
        )
        assert (stopped.status_code, stopped.json()["needs_new_consent"]) == (200, False)

    async def test_bad_filters_are_422(self, api_client: ClientFactory) -> None:
        approver = await api_client(role="approver", region="53")
        for params in (
            {"due_before": "soon"},
            {"recheck_class": "x"},
            {"cursor": "zz"},
            {"needs_new_consent": "maybe"},
            {"reference": "x" * 129},
        ):
            response = await approver.get("/v1/recipients", params=params)
            assert response.status_code == 422, params

    async def test_a_stopped_household_leaves_the_roll_with_the_reason(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        verification_id, _ = await approved_household(http, caseworker, approver)
        [recipient] = [
            r
            for r in await roll(approver, limit=200)
            if r["origin_verification_id"] == verification_id
        ]
        stop = f"/v1/recipients/{recipient['id']}/stop"
        assert (await caseworker.post(stop, json={"reason": "moved"})).status_code == 403
        stopped = await approver.post(stop, json={"reason": "moved away"})
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "left"
        assert stopped.json()["left_reason"] == "stopped: moved away"
        assert stopped.json()["next_recheck_on"] is None  # re-checked no more
        due_soon = await roll(approver, due_before="2099-12-31")
        assert recipient["id"] not in {r["id"] for r in due_soon}
        assert (await approver.post(stop, json={"reason": "again"})).status_code == 409
        assert recipient["id"] in {r["id"] for r in await roll(approver, status="left")}


def test_next_after_catches_up_with_one_step() -> None:
    assert next_after(date(2027, 6, 4), 6, date(2027, 12, 4)) == date(2028, 6, 4)
    assert next_after(date(2027, 6, 4), 6, date(2027, 12, 3)) == date(2027, 12, 4)
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
