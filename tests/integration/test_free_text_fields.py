"""Every field a person writes in and hedui stores and shows as given is held to the same
rules: no ID number however it is written, no control or format characters (escape
sequences that repaint a terminal, direction overrides), never blank; names and references
on one line. Each refusal is a 422 naming the field, before anything is looked up."""

from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, near_relative_body, verification_body
from tests.integration.test_recipients import WAIT, approved_household

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


class TestAMembersNameInFreeText:
    """A reason or note is stored and shown as written, where the household's names are
    sealed and shown masked: one that names a member (written apart, in another width) is
    a 422 at the field, and nothing is recorded."""

    async def test_a_decisions_and_a_withdrawals_reason(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        id_number = make_id_number("530102")
        assert (await http.post("/sandbox/people", json={"id_number": id_number})).is_success
        body = verification_body([member(id_number, "欧阳娜娜")], as_of=None)
        created = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
        assert created.status_code == 200, created.text
        url = f"/v1/verifications/{created.json()['id']}"
        named = {"decision": "reject", "reason": "欧阳 娜娜 has a car"}
        await _refused(await approver.post(f"{url}/decision", json=named), ["body", "reason"])
        await _refused(
            await caseworker.post(f"{url}/withdraw", json={"reason": "欧阳 娜娜 withdrew"}),
            ["body", "reason"],
        )
        stored = (await caseworker.get(url)).json()
        assert stored["status"] == "completed"
        assert stored["decisions"] == []
        kept = await approver.post(
            f"{url}/decision", json={"decision": "reject", "reason": "the applicant has a car"}
        )
        assert kept.status_code == 201, kept.text

    async def test_a_recipients_stop_reason(
        self, http: httpx.AsyncClient, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(role="caseworker", region="530102")
        approver = await api_client(role="approver", region="530102")
        await approved_household(http, caseworker, approver, reference="stop-named")
        [recipient] = [
            r
            for r in (await approver.get("/v1/recipients", params={"limit": 200})).json()["items"]
            if r["reference"] == "stop-named"
        ]
        url = f"/v1/recipients/{recipient['id']}/stop"
        await _refused(
            await approver.post(url, json={"reason": "张三 moved away"}), ["body", "reason"]
        )
        assert (await approver.get(f"/v1/recipients/{recipient['id']}")).json()["status"] == (
            "active"
        )

    async def test_a_near_relatives_position_and_revocation_reason(
        self, api_client: ClientFactory
    ) -> None:
        auditor = await api_client(role="auditor", region="53")
        body = near_relative_body(make_id_number("530102"))
        spouse = {**body, "staff_position": f"{body['relative_name']}之夫, 村委会主任"}
        await _refused(
            await auditor.post("/v1/near-relatives", json=spouse), ["body", "staff_position"]
        )
        created = await auditor.post("/v1/near-relatives", json=body)
        assert created.status_code == 201, created.text
        url = f"/v1/near-relatives/{created.json()['id']}/revoke"
        await _refused(
            await auditor.post(url, json={"reason": f"{body['staff_name']} left the post"}),
            ["body", "reason"],
        )
