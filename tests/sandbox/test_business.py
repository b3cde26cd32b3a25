"""Business registration: roles of many people per search, paged by number."""

import httpx
import pytest

from sandbox.records import Person
from tests.sandbox.helpers import ALICE, BOB, FindSynthetic, Seed

REPRESENTATIVE = {
    "company": "云南某某商贸有限公司",
    "credit_code": "91530102MA6K123456",
    "role": "legal_representative",
    "registered_capital": 500000,
}
SHAREHOLDER = {**REPRESENTATIVE, "role": "shareholder", "share_ratio": "0.35"}


async def _search(client: httpx.AsyncClient, ids: list[str], **params: int) -> httpx.Response:
    return await client.post("/business/persons/search", params=params, json={"idNumbers": ids})


async def test_lists_each_role_with_capital_in_yuan(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed(ALICE, business=[REPRESENTATIVE, SHAREHOLDER])
    await seed(BOB)

    response = await _search(client, [ALICE, BOB])

    assert response.status_code == 200
    result = response.json()["result"]
    assert (result["page"], result["pages"], result["total"]) == (1, 1, 2)
    assert result["records"] == [
        {
            "personId": ALICE,
            "entName": "云南某某商贸有限公司",
            "uniscid": "91530102MA6K123456",
            "role": "legal_representative",
            "regCap": "500000.00",
            "shareRatio": None,
        },
        {
            "personId": ALICE,
            "entName": "云南某某商贸有限公司",
            "uniscid": "91530102MA6K123456",
            "role": "shareholder",
            "regCap": "500000.00",
            "shareRatio": "0.35",
        },
    ]


async def test_pages_split_the_records_and_stop_at_the_last(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(ALICE, business=[REPRESENTATIVE, SHAREHOLDER])
    await seed(BOB, business=[SHAREHOLDER])

    first = (await _search(client, [ALICE, BOB], page=1, size=2)).json()["result"]
    second = (await _search(client, [ALICE, BOB], page=2, size=2)).json()["result"]
    beyond = (await _search(client, [ALICE, BOB], page=3, size=2)).json()["result"]

    assert (first["pages"], len(first["records"]), len(second["records"])) == (2, 2, 1)
    assert second["records"][0]["personId"] == BOB
    assert beyond["records"] == []


@pytest.mark.parametrize("params", [{"page": 0}, {"size": 51}])
async def test_a_bad_page_is_a_400(client: httpx.AsyncClient, params: dict[str, int]) -> None:
    response = await _search(client, [ALICE], **params)

    assert response.status_code == 400
    assert response.json()["success"] is False


async def test_a_malformed_body_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/business/persons/search", json={"idNumbers": ALICE})

    assert (response.status_code, response.json()["errorCode"]) == (400, "E4000")


async def test_synthetic_people_hold_plausible_roles(
    client: httpx.AsyncClient, synthetic_id: FindSynthetic
) -> None:
    def _represents(person: Person) -> bool:
        return any(r.role == "legal_representative" for r in person.business or [])

    id_number = synthetic_id(_represents)

    records = (await _search(client, [id_number])).json()["result"]["records"]

    assert any(r["role"] == "legal_representative" for r in records)
    assert all(float(r["regCap"]) >= 100_000 for r in records)


async def test_faults_fail_in_the_agency_shape(client: httpx.AsyncClient) -> None:
    await client.put("/faults/business", json={"mode": "error"})

    response = await _search(client, [ALICE])

    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "errorCode": "E500",
        "errorMsg": "internal server error",
    }


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/business/health")

    assert (response.status_code, response.json()) == (200, {"success": True})
