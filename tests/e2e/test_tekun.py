"""特困 over the API: support arrangements, care subsidies and the pension-contribution rule."""

import json
import uuid
from typing import Any

import httpx

from tests.conftest import ClientFactory
from tests.e2e.test_verification_flow import WAIT, report_of, seed
from tests.factories import make_id_number, member, verification_body


async def _concentrated_grade_1(http: httpx.AsyncClient, applicant: str) -> dict[str, Any]:
    """A tekun application for `applicant` alone, Yunnan rural, concentrated, grade 1, with
    no income and contributing to the resident pension (seeded with the partners)."""
    await seed(http, applicant, pension={"status": "contributing", "monthly_amount": 0})
    body = verification_body(
        [member(applicant)], region_code="530103", program="tekun", area="rural"
    )
    return body | {"support_mode": "concentrated", "care_grade": 1}


async def test_yunnan_concentrated_grade_1_pays_standard_plus_care_subsidy(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """Yunnan rural, concentrated, grade 1, no income, contributing to the resident pension:
    832.00 + 835.00 = 1667.00, and the report is reproduced byte for byte."""
    caseworker = await api_client(region="53")
    body = await _concentrated_grade_1(http, make_id_number("530103"))

    response = await caseworker.post("/v1/verifications", json=body, headers=WAIT)

    assert response.status_code == 200, response.text
    assert (response.json()["support_mode"], response.json()["care_grade"]) == ("concentrated", 1)
    report = await report_of(caseworker, response.json()["id"])
    assert report["recommendation"] == "eligible"
    assert report["benefit"]["monthly_amount"] == "1667.00"
    assert report["benefit"]["care_subsidy"] == "835.00"
    assert report["benefit"]["basis"].split("\n") == [
        "832.00 元 × 1 人 − 家庭月收入 0.00 元 = 832.00 元",
        "照料护理补贴（集中供养，1 档）835.00 元",
        "每月合计 832.00 元 + 835.00 元 = 1667.00 元",
    ]
    assert report["policy"]["monthly_standard"] == "832.00"
    assert (report["policy"]["support_mode"], report["policy"]["care_grade"]) == (
        "concentrated",
        1,
    )
    codes = {finding["code"]: finding["severity"] for finding in report["findings"]}
    assert codes["tekun_pension_contribution"] == "info"
    assert "tekun_working_member" not in codes

    rescored = await caseworker.post(f"/v1/verifications/{report['verification_id']}/rescore")
    assert rescored.json()["identical"] is True
    assert json.dumps(rescored.json()["report"], sort_keys=True) == json.dumps(
        report, sort_keys=True
    )
    # Before June 2020 only the national placeholders were in force: no care subsidy to apply.
    earlier = await caseworker.post(
        f"/v1/verifications/{report['verification_id']}/rescore", json={"as_of": "2019-06-01"}
    )
    assert earlier.status_code == 422
    assert earlier.json()["errors"][0]["loc"] == ["body", "as_of"]
    assert "care subsidy" in earlier.json()["errors"][0]["msg"]

    # What if the grade-1 subsidy were 900? 832 + 900 = 1732.00; figures without grade 1
    # cannot score this case and are refused, naming the figure.
    analyst = await api_client(role="approver", region="53")
    what_if = {"region_code": "530103", "program": "tekun", "area": "rural"}
    raised = await analyst.post(
        "/v1/policy/simulate",
        json=what_if | {"overrides": {"care_subsidies": {"concentrated": {"1": 900}}}},
    )
    assert raised.status_code == 200, raised.text
    [row] = [r for r in raised.json()["rows"] if r["verification_id"] == report["verification_id"]]
    assert (row["benefit_before"], row["benefit_after"]) == ("1667.00", "1732.00")
    dropped = await analyst.post(
        "/v1/policy/simulate",
        json=what_if | {"overrides": {"care_subsidies": {"concentrated": {"2": 418}}}},
    )
    assert dropped.status_code == 422
    assert dropped.json()["errors"][0]["loc"] == ["body", "overrides", "care_subsidies"]


async def test_a_tekun_applicant_of_working_age_goes_to_a_person(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """41, no income, nothing on record: 特困 needs no ability to work, which no partner can
    show. Review, with the age (never the birth date) as evidence; not a benefit."""
    caseworker = await api_client(region="36")
    applicant = make_id_number("360102", birth="19850301")
    await seed(http, applicant)
    body = verification_body(
        [member(applicant)], region_code="360102", program="tekun", area="rural"
    )
    body["support_mode"] = "concentrated"

    response = await caseworker.post("/v1/verifications", json=body, headers=WAIT)

    assert response.status_code == 200, response.text
    report = await report_of(caseworker, response.json()["id"])
    assert report["recommendation"] == "review"
    assert report["benefit"] is None
    [finding] = [f for f in report["findings"] if f["code"] == "tekun_working_age"]
    assert finding["severity"] == "warning"
    assert finding["evidence"][0]["fact"].startswith("age=41 on ")
    assert "19850301" not in str(report)


async def test_jiangxi_rural_concentrated_applies_505(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """Declared 300: below the rural dibao standard (385, the income test), top-up to the 505
    concentrated standard 205.00 (a person of 76)."""
    caseworker = await api_client(region="36")
    applicant = make_id_number("360102", birth="19500101")
    await seed(http, applicant)
    body = verification_body(
        [member(applicant, declared=300)], region_code="360102", program="tekun", area="rural"
    )
    body["support_mode"] = "concentrated"

    response = await caseworker.post("/v1/verifications", json=body, headers=WAIT)

    assert response.status_code == 200, response.text
    report = await report_of(caseworker, response.json()["id"])
    assert report["policy"]["monthly_standard"] == "505.00"
    assert report["policy"]["support_mode"] == "concentrated"
    assert "care_grade" not in report["policy"]
    assert report["benefit"] == {
        "monthly_amount": "205.00",
        "basis": "505.00 元 × 1 人 − 家庭月收入 300.00 元 = 205.00 元",
        "one_off_amount": None,
    }


async def test_undefined_combinations_are_422_naming_the_field_and_store_nothing(
    api_client: ClientFactory,
) -> None:
    caseworker = await api_client(region="36")
    reference = f"tekun-{uuid.uuid4().hex[:12]}"
    cases = [
        # Jiangxi has made no care arrangement for those who care for themselves (grade 3).
        ({"program": "tekun", "support_mode": "concentrated", "care_grade": 3}, "care_grade"),
        ({"program": "tekun", "support_mode": "dispersed", "care_grade": 1}, "care_grade"),
        ({"program": "tekun", "care_grade": 1}, "care_grade"),
        ({"program": "dibao", "support_mode": "concentrated"}, "support_mode"),
        ({"program": "tekun", "support_mode": "institution"}, "support_mode"),
        ({"program": "tekun", "support_mode": "concentrated", "care_grade": 4}, "care_grade"),
    ]
    for fields, field in cases:
        body = verification_body(
            [member(make_id_number("360102"))],
            region_code="360102",
            area="rural",
            reference=reference,
        )
        response = await caseworker.post("/v1/verifications", json=body | fields)
        assert response.status_code == 422, (fields, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["loc"] == ["body", field], fields

    listed = await caseworker.get("/v1/verifications", params={"reference": reference})
    assert listed.json()["items"] == []


async def test_a_person_on_the_tekun_roll_is_not_put_on_the_dibao_roll_too(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """特困 and 低保 exclude each other: a person supported as tekun is paid once, so an
    approval of a dibao household with them in it is 409, naming the roll they are on."""
    caseworker = await api_client(region="53")
    approver = await api_client(role="approver", region="53")
    applicant = make_id_number("530103")
    tekun = await _concentrated_grade_1(http, applicant)
    supported = await caseworker.post("/v1/verifications", json=tekun, headers=WAIT)
    assert supported.status_code == 200, supported.text
    approved = await approver.post(
        f"/v1/verifications/{supported.json()['id']}/decision",
        json={"decision": "approve", "reason": "documents checked"},
    )
    assert approved.status_code == 201, approved.text
    child = make_id_number("530103", birth="20150101")
    await seed(http, child)
    dibao = verification_body(
        [member(applicant), member(child, relation="child")],
        region_code="530103",
        program="dibao",
        area="rural",
    )
    household = await caseworker.post("/v1/verifications", json=dibao, headers=WAIT)
    assert household.status_code == 200, household.text
    assert household.json()["recommendation"] == "eligible", household.text

    refused = await approver.post(
        f"/v1/verifications/{household.json()['id']}/decision",
        json={"decision": "approve", "reason": "documents checked"},
    )

    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/already-on-the-roll")
    assert "on the tekun roll already" in refused.json()["detail"]
    assert applicant not in refused.text
