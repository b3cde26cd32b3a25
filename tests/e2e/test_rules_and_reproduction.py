"""Rules, reproduction and what-if simulation against the running service."""

import json
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.e2e.office import Office, a_year_on
from tests.e2e.test_verification_flow import WAIT, report_of, seed
from tests.factories import make_id_number, member, near_relative_body, verification_body


async def verified(
    http: httpx.AsyncClient,
    client: httpx.AsyncClient,
    people: list[tuple[str, dict[str, Any], Any]],
    region_code: str = "530103",
) -> dict[str, Any]:
    """Seed each (id, sections, declared income), verify the household, return its report."""
    for id_number, sections, _ in people:
        await seed(http, id_number, **sections)
    body = verification_body(
        [
            member(id_number, "张三", "applicant" if i == 0 else "child", declared)
            for i, (id_number, _, declared) in enumerate(people)
        ],
        region_code=region_code,
    )
    response = await client.post("/v1/verifications", json=body, headers=WAIT)
    assert response.status_code == 200, response.text
    return await report_of(client, response.json()["id"])


@pytest.mark.parametrize(
    ("sections", "code", "source"),
    [
        (
            {
                "vehicles": [
                    {
                        "plate": "云A12345",
                        "type": "car",
                        "registered_on": "2019-05-01",
                        "value": 85000,
                    }
                ]
            },
            "vehicle_over_threshold",
            "vehicles",
        ),
        (
            {
                "bank_accounts": [
                    {"bank": "中国工商银行", "account": "6222020200112233", "balance": 500000}
                ]
            },
            "assets_over_limit",
            "bank",
        ),
        (
            {"public_payroll": {"employer": "某某局", "monthly_salary": 4500}},
            "public_payroll_member",
            "public_payroll",
        ),
    ],
)
async def test_disqualifying_facts_name_their_source(
    http: httpx.AsyncClient,
    api_client: ClientFactory,
    sections: dict[str, Any],
    code: str,
    source: str,
) -> None:
    caseworker = await api_client()
    report = await verified(http, caseworker, [(make_id_number("530103"), sections, 0)])

    assert report["recommendation"] == "ineligible"
    finding = next(f for f in report["findings"] if f["code"] == code)
    assert finding["severity"] == "disqualifying"
    assert any(evidence["source"] == source for evidence in finding["evidence"])
    assert report["benefit"] is None


@pytest.mark.parametrize("value", [0, None], ids=["recorded_as_0", "no_value_on_record"])
async def test_a_car_of_unknown_value_sends_the_household_to_review(
    http: httpx.AsyncClient, api_client: ClientFactory, value: int | None
) -> None:
    """Once "worth 0.00 yuan, not above the 0.00 limit" and eligible; now review, saying why."""
    caseworker = await api_client()
    car = {"plate": "云A54321", "type": "car", "registered_on": "2018-03-01", "value": value}
    report = await verified(http, caseworker, [(make_id_number("530103"), {"vehicles": [car]}, 0)])

    assert report["complete"] is True
    assert report["recommendation"] == "review"
    assert report["benefit"] is None
    [finding] = [f for f in report["findings"] if f["code"].startswith("vehicle_")]
    assert finding["code"] == "vehicle_value_unknown"
    assert finding["severity"] == "warning"
    assert "价值未知" in finding["message"]
    assert "限额" not in finding["message"]
    assert finding["evidence"][0]["source"] == "vehicles"
    verification = await caseworker.get(f"/v1/verifications/{report['verification_id']}")
    assert verification.json()["recommendation"] == "review"


async def test_rescore_under_the_stored_policy_is_byte_for_byte_identical(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client()
    people = [
        (make_id_number("530103"), {"pension": {"status": "receiving", "monthly_amount": 300}}, 0),
        (make_id_number("530103", "20100101"), {}, 0),
    ]
    report = await verified(http, caseworker, people)

    response = await caseworker.post(f"/v1/verifications/{report['verification_id']}/rescore")

    assert response.status_code == 200
    result = response.json()
    assert result["identical"] is True
    assert result["changes"] == []
    assert json.dumps(result["report"], sort_keys=True) == json.dumps(report, sort_keys=True)
    assert result["original_report_hash"] == report["report_hash"]


async def test_rescore_under_another_date_uses_that_dates_policy(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client()
    report = await verified(http, caseworker, [(make_id_number("530103"), {}, 100)])

    response = await caseworker.post(
        f"/v1/verifications/{report['verification_id']}/rescore", json={"as_of": "2019-06-01"}
    )

    result = response.json()
    assert response.status_code == 200
    assert result["report"]["policy"]["version"] != report["policy"]["version"]
    assert "policy" in result["changes"]
    assert result["identical"] is False


async def test_english_report_changes_messages_only(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client()
    report = await verified(http, caseworker, [(make_id_number("530103"), {}, 200)])

    english = await caseworker.get(
        f"/v1/verifications/{report['verification_id']}/report",
        headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"},
    )

    assert english.headers["content-language"] == "en"
    translated = english.json()
    assert [f["code"] for f in translated["findings"]] == [f["code"] for f in report["findings"]]
    assert [f["message"] for f in translated["findings"]] != [
        f["message"] for f in report["findings"]
    ]
    for key in ("household", "score", "recommendation", "report_hash", "policy"):
        assert translated[key] == report[key]
    assert translated["benefit"]["monthly_amount"] == report["benefit"]["monthly_amount"]


async def test_decision_records_report_hash_and_policy_version(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client()
    approver = await api_client(role="approver")
    report = await verified(http, caseworker, [(make_id_number("530103"), {}, 100)])

    decision = await approver.post(
        f"/v1/verifications/{report['verification_id']}/decision",
        json={"decision": "approve", "reason": "figures checked"},
    )

    assert decision.status_code == 201
    assert decision.json()["report_hash"] == report["report_hash"]
    assert decision.json()["policy_version"] == report["policy"]["version"]


async def test_simulation_counts_changed_recommendations_and_benefit_delta(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """Per-capita 650: ineligible at Yunnan's 640, eligible at 700 with (700-650)×2 = 100."""
    region = "530112"  # used by this test alone, so the totals are exact
    caseworker = await api_client(region=region)
    analyst = await api_client(role="auditor", region="53")
    just_above = [
        (
            make_id_number(region),
            {"pension": {"status": "receiving", "monthly_amount": 1300}},
            1300,
        ),
        (make_id_number(region, "20100101"), {}, 0),
    ]
    poor = [(make_id_number(region), {}, 100)]
    before_above = await verified(http, caseworker, just_above, region)
    before_poor = await verified(http, caseworker, poor, region)
    assert before_above["recommendation"] == "ineligible"
    assert before_poor["benefit"]["monthly_amount"] == "540.00"

    response = await analyst.post(
        "/v1/policy/simulate",
        json={
            "region_code": region,
            "program": "dibao",
            "area": "urban",
            "overrides": {"monthly_standard": 700},
        },
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["verifications"] == 2
    assert result["changed"] == 1
    assert result["newly_eligible"] == 1
    # 100 for the newly eligible household, 60 more for the poor one (700-100 vs 640-100).
    assert result["monthly_benefit_delta"] == "160.00"
    stored = await caseworker.get(f"/v1/verifications/{before_above['verification_id']}")
    assert stored.json()["recommendation"] == "ineligible"  # a simulation stores nothing


async def test_simulation_needs_program_and_area(api_client: ClientFactory) -> None:
    """Figures belong to one program and area: a standard must not leak into another."""
    analyst = await api_client(role="auditor", region="53")
    response = await analyst.post(
        "/v1/policy/simulate", json={"overrides": {"monthly_standard": 700}}
    )
    assert response.status_code == 422
    assert {tuple(error["loc"]) for error in response.json()["errors"]} == {
        ("body", "program"),
        ("body", "area"),
    }


async def test_english_rescore_of_the_stored_policy_is_still_identical(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    caseworker = await api_client()
    report = await verified(http, caseworker, [(make_id_number("530103"), {}, 100)])
    response = await caseworker.post(
        f"/v1/verifications/{report['verification_id']}/rescore",
        headers={"Accept-Language": "en"},
    )
    result = response.json()
    assert result["identical"] is True
    assert result["report"]["findings"][0]["message"].startswith("Household monthly income")


async def test_simulation_rejects_unknown_parameters(api_client: ClientFactory) -> None:
    analyst = await api_client(role="auditor", region="53")
    response = await analyst.post(
        "/v1/policy/simulate",
        json={"program": "dibao", "area": "urban", "overrides": {"monthly_standrad": 700}},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "overrides", "monthly_standrad"]


async def test_registered_near_relative_needs_review_and_rescore_remembers_it(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    relative = make_id_number("530103")
    auditor = await api_client(role="auditor", region="53")
    registration = await auditor.post(
        "/v1/near-relatives",
        json=near_relative_body(relative, region_code="530103", relationship="sibling"),
    )
    assert registration.status_code == 201, registration.text
    caseworker = await api_client()

    report = await verified(http, caseworker, [(relative, {}, 100)])

    assert report["recommendation"] == "review"
    finding = next(f for f in report["findings"] if f["code"] == "near_relative_registered")
    assert finding["evidence"][0]["member"] == relative[:6] + "********" + relative[-4:]
    revoked = await auditor.post(
        f"/v1/near-relatives/{registration.json()['id']}/revoke", json={"reason": "moved away"}
    )
    assert revoked.status_code == 200
    rescored = await caseworker.post(f"/v1/verifications/{report['verification_id']}/rescore")
    assert rescored.json()["identical"] is True


async def test_a_near_relative_registered_after_the_report_stops_its_approval(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """The report found no near relative; one is registered before the approver decides.
    The approval would not have seen it (人情保): refused, naming the member masked and what
    to do, and nothing is written. Returning it is still possible; a new verification of
    the household shows the registration, and that report can be approved."""
    relative = make_id_number("530103")
    caseworker = await api_client()
    approver = await api_client(role="approver")
    auditor = await api_client(role="auditor", region="53")
    report = await verified(http, caseworker, [(relative, {}, 100)])
    assert report["recommendation"] == "eligible"
    registration = await auditor.post(
        "/v1/near-relatives",
        json=near_relative_body(relative, region_code="530103", relationship="sibling"),
    )
    assert registration.status_code == 201, registration.text
    decision = f"/v1/verifications/{report['verification_id']}/decision"

    refused = await approver.post(decision, json={"decision": "approve", "reason": "符合条件"})

    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/near-relative-registered-since")
    assert relative[:6] + "********" + relative[-4:] in problem["detail"]
    assert relative not in refused.text
    roll = (await approver.get("/v1/recipients", params={"limit": 200})).json()["items"]
    assert report["verification_id"] not in [r["origin_verification_id"] for r in roll]
    verification = await approver.get(f"/v1/verifications/{report['verification_id']}")
    assert verification.json()["decisions"] == []
    again = await verified(http, caseworker, [(relative, {}, 100)])
    assert again["recommendation"] == "review"
    approved = await approver.post(
        f"/v1/verifications/{again['verification_id']}/decision",
        json={"decision": "approve", "reason": "亲属关系已核实", "monthly_benefit": "540.00"},
    )
    assert approved.status_code == 201, approved.text
    returned = await approver.post(decision, json={"decision": "return", "reason": "重新核对"})
    assert returned.status_code == 201, returned.text


# What a simulation counts: one row per household, whatever its history.


async def _simulated(client: httpx.AsyncClient, program: str = "dibao") -> dict[str, Any]:
    """Yunnan's urban standard raised from 640 to 700, over the office's households."""
    response = await client.post(
        "/v1/policy/simulate",
        json={"program": program, "area": "urban", "overrides": {"monthly_standard": "700"}},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _rechecked(county: Office, *known: str) -> str:
    """Re-check the roll a year on; the one re-check's verification (not one of `known`)."""
    ran = await county.recheck("--as-of", a_year_on().isoformat())
    assert "1 re-checked" in ran.stdout, ran.stdout
    listed = await county.caseworker.get("/v1/verifications", params={"limit": 200})
    [recheck] = [item["id"] for item in listed.json()["items"] if item["id"] not in known]
    return str(recheck)


async def test_a_household_rechecked_is_simulated_once(
    office: Office,
) -> None:
    """On the roll, re-checked once with nothing changed: the approver reads the cost of
    one household, 640.00 → 700.00, not of one per verification stored (1280.00, +120.00)."""
    origin = await office.approve("530102", {"id_number": make_id_number("530102")})
    await _rechecked(office, origin)

    result = await _simulated(office.approver)

    assert (
        result["verifications"],
        result["monthly_benefit_before"],
        result["monthly_benefit_delta"],
    ) == (1, "640.00", "60.00"), result
    assert [row["verification_id"] for row in result["rows"]] == [origin]


async def test_a_household_on_the_roll_counts_by_its_approved_verification(
    office: Office,
) -> None:
    """Its earlier applications (returned with a member fewer, rejected) and the
    verification that first put it on the roll are no further households: only the
    re-check approved since counts."""
    parent, child = make_id_number("530102"), make_id_number("530102", birth="20100101")
    returned = await office.verify("530102", {"id_number": parent})
    assert (await office.decide(returned, "return")).status_code == 201
    rejected = await office.verify("530102", {"id_number": parent}, {"id_number": child})
    assert (await office.decide(rejected, "reject")).status_code == 201
    origin = await office.approve("530102", {"id_number": parent}, {"id_number": child})
    recheck = await _rechecked(office, returned, rejected, origin)
    assert (await office.decide(recheck, "approve")).status_code == 201

    result = await _simulated(office.approver)

    assert [row["verification_id"] for row in result["rows"]] == [recheck], result
    assert (result["monthly_benefit_before"], result["monthly_benefit_delta"]) == (
        "1280.00",
        "120.00",
    )


async def test_a_household_off_the_roll_counts_by_its_latest_verification(
    office: Office,
) -> None:
    """Verified again with the same members (an application sent again; a household
    rejected at its re-check), a household counts once, by its latest verification. One
    whose members changed counts once per composition; a linshi one-off is paid per
    application, and each counts."""
    single, child = make_id_number("530102"), make_id_number("530102", birth="20100101")
    left = make_id_number("530102")
    sent = await office.verify("530102", {"id_number": single})
    assert (await office.decide(sent, "return")).status_code == 201
    sent_again = await office.verify("530102", {"id_number": single})
    origin = await office.approve("530102", {"id_number": left})
    recheck = await _rechecked(office, sent, sent_again, origin)
    assert (await office.decide(recheck, "reject")).status_code == 201
    both = await office.verify("530102", {"id_number": single}, {"id_number": child})
    linshi = [await office.verify("530102", {"id_number": single}, program="linshi")]
    linshi.append(await office.verify("530102", {"id_number": single}, program="linshi"))

    result = await _simulated(office.approver)

    counted = {row["verification_id"] for row in result["rows"]}
    assert counted == {sent_again, recheck, both}, result
    assert (result["monthly_benefit_before"], result["monthly_benefit_delta"]) == (
        "2560.00",
        "240.00",
    )
    one_offs = await _simulated(office.approver, program="linshi")
    assert {row["verification_id"] for row in one_offs["rows"]} == set(linshi), one_offs
