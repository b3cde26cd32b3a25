"""Public payroll: a whole household per call; only people on payroll come back."""

import httpx
import pytest

from tests.sandbox.helpers import ALICE, BOB, Seed


async def test_returns_only_people_on_payroll(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed(ALICE, public_payroll={"employer": "某某局", "monthly_salary": 4500})
    await seed(BOB, pension={"status": "none"})

    response = await client.post("/public_payroll/verify", json={"sfzh_list": [ALICE, BOB]})

    assert response.status_code == 200
    assert response.json() == {
        "flag": "1",
        "rows": [{"sfzh": ALICE, "gzdw": "某某局", "yfgz": "4500.00"}],
    }


async def test_nobody_on_payroll_is_an_empty_list(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed(BOB)

    response = await client.post("/public_payroll/verify", json={"sfzh_list": [BOB]})

    assert response.json() == {"flag": "1", "rows": []}


@pytest.mark.parametrize("body", [{"sfzh": ALICE}, {"sfzh_list": ALICE}, {"sfzh_list": [1]}])
async def test_a_malformed_body_is_a_400(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/public_payroll/verify", json=body)

    assert response.status_code == 400
    assert response.json()["flag"] == "0"
    assert response.json()["errmsg"]


async def test_ping(client: httpx.AsyncClient) -> None:
    response = await client.get("/public_payroll/ping")

    assert (response.status_code, response.json()) == (200, {"flag": "1"})
