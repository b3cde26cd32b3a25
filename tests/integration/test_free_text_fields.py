"""Every field a person writes in and hedui stores and shows as given is held to the same
rules: no ID number however it is written, no control or format characters (escape
sequences that repaint a terminal, direction overrides), never blank; names and references
on one line. Each refusal is a 422 naming the field, before anything is looked up."""

from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, near_relative_body, verification_body

ID_NUMBER = "530102198001013152"
ESCAPE = "\u001b[2J\u001b[31mPWNED"
HOSTILE_TEXT = {
    "an ID number": f"staff {ID_NUMBER} left",
    "an ID number with words between": "ID 530102 born 19800101 seq 3152",
    "an escape sequence": ESCAPE,
    "a bell": "a\u0007b",
    "a direction override": "a\u202eb",
    "blank": "   ",
}
HOSTILE_LINE = {**HOSTILE_TEXT, "a line break": "张\n三", "a lone zero-width space": "\u200b"}


def _ids(cases: dict[str, str]) -> dict[str, Any]:
    return {"argvalues": list(cases.values()), "ids": list(cases)}


async def _refused(response: httpx.Response, loc: list[str | int]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == loc
    assert ID_NUMBER not in response.text
    assert "\u001b" not in response.text


@pytest.mark.parametrize("text", **_ids(HOSTILE_LINE))
async def test_a_members_name(api_client: ClientFactory, text: str) -> None:
    caseworker = await api_client()
    body = verification_body([member(make_id_number("530102"), text)])
    await _refused(
        await caseworker.post("/v1/verifications", json=body), ["body", "members", 0, "name"]
    )


@pytest.mark.parametrize("text", **_ids(HOSTILE_LINE))
async def test_a_verifications_reference(api_client: ClientFactory, text: str) -> None:
    caseworker = await api_client()
    body = verification_body([member(make_id_number("530102"))], reference=text)
    await _refused(await caseworker.post("/v1/verifications", json=body), ["body", "reference"])


@pytest.mark.parametrize("text", **_ids(HOSTILE_LINE))
async def test_a_batchs_reference(api_client: ClientFactory, text: str) -> None:
    caseworker = await api_client()
    before = (await caseworker.get("/v1/batches", params={"limit": 200})).json()["items"]
    response = await caseworker.post(
        "/v1/batches",
        params={"reference": text},
        content=b"",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "reference"]
    after = (await caseworker.get("/v1/batches", params={"limit": 200})).json()["items"]
    assert [batch["id"] for batch in after] == [batch["id"] for batch in before]


@pytest.mark.parametrize("text", **_ids(HOSTILE_TEXT))
async def test_a_withdrawals_reason(api_client: ClientFactory, text: str) -> None:
    caseworker = await api_client()
    response = await caseworker.post(
        "/v1/verifications/no-such-verification/withdraw", json={"reason": text}
    )
    await _refused(response, ["body", "reason"])


@pytest.mark.parametrize("text", **_ids(HOSTILE_TEXT))
async def test_an_api_keys_revocation_reason(api_client: ClientFactory, text: str) -> None:
    admin = await api_client(role="admin", region="53")
    response = await admin.post("/v1/apikeys/no-such-key/revoke", json={"reason": text})
    await _refused(response, ["body", "reason"])


@pytest.mark.parametrize("text", **_ids(HOSTILE_TEXT))
async def test_a_near_relatives_revocation_reason(api_client: ClientFactory, text: str) -> None:
    auditor = await api_client(role="auditor", region="53")
    response = await auditor.post(
        "/v1/near-relatives/no-such-registration/revoke", json={"reason": text}
    )
    await _refused(response, ["body", "reason"])


@pytest.mark.parametrize("field", ["staff_name", "relative_name"])
@pytest.mark.parametrize("text", **_ids(HOSTILE_LINE))
async def test_a_near_relatives_names(api_client: ClientFactory, field: str, text: str) -> None:
    auditor = await api_client(role="auditor", region="53")
    body = near_relative_body(make_id_number("530102"), **{field: text})
    await _refused(await auditor.post("/v1/near-relatives", json=body), ["body", field])


async def test_names_and_references_as_offices_write_them_are_kept(
    api_client: ClientFactory,
) -> None:
    caseworker = await api_client()
    body = verification_body(
        [member(make_id_number("530102"), "阿卜杜·热合曼")], reference="案-2026/000123 (复核)"
    )
    response = await caseworker.post("/v1/verifications", json=body)
    assert response.status_code == 202, response.text
    stored = (await caseworker.get(f"/v1/verifications/{response.json()['id']}")).json()
    assert stored["reference"] == "案-2026/000123 (复核)"
    assert stored["members"][0]["name"] == "阿******"
