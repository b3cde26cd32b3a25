"""Pensions: JSON batches of up to 50 people, matched back by `seq`."""

import httpx
import pytest

from tests.sandbox.helpers import ALICE, BOB, Seed, valid_id


def batch(*id_numbers: str) -> dict[str, object]:
    return {
        "requests": [{"seq": seq, "sfzh": id_number} for seq, id_number in enumerate(id_numbers, 1)]
    }


async def test_answers_each_request_by_seq(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed(ALICE, pension={"status": "receiving", "monthly_amount": "1200"})
    await seed(BOB, pension={"status": "contributing", "monthly_amount": 0})
    carol = valid_id("53010219900101123")
    await seed(carol)

    response = await client.post("/pensions/batch", json=batch(ALICE, BOB, carol))

    assert response.status_code == 200
    assert response.json() == {
        "code": 0,
        "results": [
            {"seq": 1, "found": True, "status": "receiving", "monthly_amount": "1200.00"},
            {"seq": 2, "found": True, "status": "contributing", "monthly_amount": "0.00"},
            {"seq": 3, "found": False},
        ],
    }


async def test_an_empty_batch_has_no_results(client: httpx.AsyncClient) -> None:
    response = await client.post("/pensions/batch", json={"requests": []})

    assert response.json() == {"code": 0, "results": []}


async def test_fifty_people_fit_in_one_batch(client: httpx.AsyncClient) -> None:
    ids = [valid_id(f"53010219900101{n:03d}") for n in range(50)]

    response = await client.post("/pensions/batch", json=batch(*ids))

    assert response.status_code == 200
    assert [result["seq"] for result in response.json()["results"]] == list(range(1, 51))


async def test_more_than_fifty_is_refused(client: httpx.AsyncClient) -> None:
    ids = [valid_id(f"53010219900101{n:03d}") for n in range(51)]

    response = await client.post("/pensions/batch", json=batch(*ids))

    assert response.status_code == 400
    assert response.json() == {"code": 4001, "message": "batch too large"}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"requests": {}}',
        b'{"requests": [{"seq": 1}]}',
        b'{"requests": [{"sfzh": "x"}]}',
    ],
    ids=["not-json", "not-object", "not-list", "no-sfzh", "no-seq"],
)
async def test_a_malformed_batch_is_a_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/pensions/batch", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == 4000


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/pensions/health")

    assert (response.status_code, response.json()) == (200, {"code": 0})
