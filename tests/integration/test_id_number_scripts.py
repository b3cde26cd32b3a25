"""ID numbers in digits other than ASCII are refused wherever an ID number is accepted.

Python's `\\d` and `int()` accept every Unicode digit: a number written in full-width or
Arabic-Indic digits once passed validation, matched nobody at any partner, and came back
`eligible` for a person whose records hold a large balance and a car.
"""

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import ClientFactory, LiveService
from tests.e2e.test_cli import hedui, stored_token
from tests.factories import make_id_number, member, verification_body

SCRIPTS = {
    "full-width": "０",
    "arabic-indic": "٠",
    "devanagari": "०",
    "mathematical-bold": "𝟎",
}


def in_script(id_number: str, zero: str) -> str:
    """The same number with its digits (not an X check character) in another script."""
    return "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in id_number)


def with_x_check(region: str = "530103") -> str:
    """A valid number whose check character is X, so the script keeps one ASCII letter."""
    for sequence in range(1000):
        candidate = make_id_number(region, "19800101", sequence)
        if candidate.endswith("X"):
            return candidate
    raise AssertionError("no sequence gives an X check character")


@pytest.mark.parametrize("zero", SCRIPTS.values(), ids=SCRIPTS.keys())
async def test_verification_refuses_other_digits_naming_the_member(
    http: httpx.AsyncClient, api_client: ClientFactory, zero: str
) -> None:
    applicant, rich = make_id_number("530103"), with_x_check()
    # The person's real records would disqualify the household.
    await http.post(
        "/sandbox/people",
        json={
            "id_number": rich,
            "bank_accounts": [
                {"bank": "中国银行", "account": "6216610000001111", "balance": 500000}
            ],
            "vehicles": [
                {"plate": "云A88888", "type": "car", "registered_on": "2020-01-01", "value": 300000}
            ],
        },
    )
    caseworker = await api_client()
    reference = f"case-script-{ord(zero)}"
    body = verification_body(
        [member(applicant), member(in_script(rich, zero), "李四", "spouse")],
        region_code="530103",
        reference=reference,
    )

    response = await caseworker.post("/v1/verifications", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == ["body", "members", 1, "id_number"]
    assert "ASCII" in response.json()["errors"][0]["msg"]
    listed = await caseworker.get("/v1/verifications", params={"reference": reference})
    assert listed.json()["items"] == []


async def test_the_same_person_written_two_ways_is_one_member(
    api_client: ClientFactory,
) -> None:
    person = with_x_check()
    caseworker = await api_client()

    lower_x = await caseworker.post(
        "/v1/verifications",
        json=verification_body(
            [member(person), member(person[:-1] + "x", "张三", "spouse")], region_code="530103"
        ),
    )
    full_width = await caseworker.post(
        "/v1/verifications",
        json=verification_body(
            [member(person), member(in_script(person, "０"), "张三", "spouse")],
            region_code="530103",
        ),
    )

    assert lower_x.status_code == 422
    assert lower_x.json()["errors"][0]["loc"] == ["body", "members"]
    assert full_width.status_code == 422
    assert full_width.json()["errors"][0]["loc"] == ["body", "members", 1, "id_number"]


async def test_near_relative_registry_refuses_other_digits(api_client: ClientFactory) -> None:
    auditor = await api_client(role="auditor", region="53")
    response = await auditor.post(
        "/v1/near-relatives",
        json={
            "region_code": "530102",
            "staff_name": "李建国",
            "staff_position": "村委会主任",
            "relative_id_number": in_script(make_id_number("530102"), "٠"),
            "relative_name": "张三丰",
            "relationship": "spouse",
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "relative_id_number"]


async def test_sandbox_refuses_to_seed_other_digits(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/sandbox/people", json={"id_number": in_script(make_id_number("530102"), "０")}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "id_number"]


async def test_region_codes_in_other_digits_are_refused(api_client: ClientFactory) -> None:
    caseworker = await api_client()
    body = verification_body([member(make_id_number("530103"))], region_code="５３０１０３")
    created = await caseworker.post("/v1/verifications", json=body)
    listed = await caseworker.get("/v1/verifications", params={"region_code": "５３"})
    assert created.status_code == 422
    assert created.json()["errors"][0]["loc"] == ["body", "region_code"]
    assert listed.status_code == 422
    assert listed.json()["errors"][0]["loc"] == ["query", "region_code"]


async def test_cli_verify_reports_the_member_field(
    live_service: LiveService, database_url: str, tmp_path: Path
) -> None:
    token = await stored_token(database_url, "caseworker", "53")
    request = tmp_path / "household.json"
    body = verification_body([member(in_script(make_id_number("530103"), "０"))])
    request.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")

    result = await hedui(
        "verify",
        str(request),
        env={"HEDUI_URL": live_service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "200"},
    )

    assert result.returncode == 1
    assert "members.0.id_number" in result.stderr
    assert "ASCII" in result.stderr


async def test_cli_refuses_a_key_region_in_other_digits(database_url: str) -> None:
    created = await hedui(
        "apikey",
        "create",
        "--role",
        "caseworker",
        "--region",
        "５３",
        env={"HEDUI_DATABASE_URL": database_url},
    )
    assert created.returncode != 0
    assert "region" in created.stderr
    assert "hd_" not in created.stdout
