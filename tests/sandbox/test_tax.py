"""Tax: annual taxable income per person in fen, every person asked answered once."""

import httpx

from sandbox.records import Person
from tests.sandbox.helpers import ALICE, BOB, FindSynthetic, Seed


async def _batch(client: httpx.AsyncClient, ids: list[str]) -> httpx.Response:
    return await client.post(
        "/tax/income/batch", json={"taxpayers": [{"sfzh": id_number} for id_number in ids]}
    )


async def test_answers_every_person_with_amounts_in_fen(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(ALICE, tax={"year": 2025, "annual_taxable_income": "48000.50"})
    await seed(BOB)

    response = await _batch(client, [ALICE, BOB])

    assert response.status_code == 200
    assert response.json() == {
        "retCode": "000000",
        "results": [
            {"sfzh": ALICE, "found": True, "taxYear": 2025, "taxableIncome": 4800050},
            {"sfzh": BOB, "found": False},
        ],
    }


async def test_more_than_twenty_is_a_400(client: httpx.AsyncClient) -> None:
    response = await _batch(client, [ALICE] * 21)

    assert response.status_code == 400
    assert response.json()["retCode"] == "400000"


async def test_a_malformed_body_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/tax/income/batch", json={"taxpayers": [ALICE]})

    assert response.status_code == 400


async def test_synthetic_people_with_taxed_income(
    client: httpx.AsyncClient, synthetic_id: FindSynthetic
) -> None:
    def _taxed(person: Person) -> bool:
        return person.tax is not None

    id_number = synthetic_id(_taxed)

    (result,) = (await _batch(client, [id_number])).json()["results"]

    assert result["found"] is True
    assert 600_000 <= result["taxableIncome"] <= 24_000_000


async def test_garbage_fault_is_not_json(client: httpx.AsyncClient) -> None:
    await client.put("/faults/tax", json={"mode": "garbage"})

    response = await _batch(client, [ALICE])

    assert response.status_code == 200
    assert response.content.startswith(b"<html>")


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/tax/health")

    assert (response.status_code, response.json()) == (200, {"retCode": "000000"})
