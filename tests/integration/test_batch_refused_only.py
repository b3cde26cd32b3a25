"""An upload whose every line is refused stores the refusals and nothing else: never a
conflict, never a 500 (found by the schemathesis run)."""

from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, verification_body


async def test_an_upload_of_refused_lines_only_lists_them(api_client: ClientFactory) -> None:
    client = await api_client(role="caseworker", region="53")
    refused = verification_body([member(make_id_number())], reference="only-refused")
    refused["members"][0]["declared_monthly_income"] = "not a number"
    nul = verification_body([member(make_id_number(), name="a\u0000b")], reference="nul")

    answer = await client.post("/v1/batches", json={"households": [refused, nul]})

    assert answer.status_code == 201, answer.text
    batch = answer.json()
    assert batch["households"] == 0
    assert batch["invalid_lines"] == 2
    errors = await client.get(f"/v1/batches/{batch['id']}/errors")
    assert errors.status_code == 200
    assert [error["line"] for error in errors.json()["items"]] == [1, 2]
    listed = await client.get(f"/v1/batches/{batch['id']}/verifications")
    assert listed.json()["items"] == []
