"""Rules, reproduction and what-if simulation against the running service."""

import json
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.e2e.test_verification_flow import WAIT, report_of, seed
from tests.factories import make_id_number, member, verification_body


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
        json={
            "region_code": "530103",
            "staff_name": "李四",
            "staff_position": "村委会主任",
            "relative_id_number": relative,
            "relative_name": "张三",
            "relationship": "sibling",
        },
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
