"""Housing fund: one form-encoded person per call, amounts in integer fen."""

import httpx
import pytest

from tests.sandbox.helpers import ALICE, BOB, Seed


async def test_answers_the_account_in_fen(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed(
        ALICE, housing_fund={"status": "active", "balance": 20000, "monthly_deposit": "600.05"}
    )

    response = await client.post("/housing_fund/account/query", data={"zjhm": ALICE})

    assert response.status_code == 200
    assert response.json() == {
        "ret": "0000",
        "msg": "success",
        "data": {"zhzt": "01", "ye": 2000000, "yjce": 60005},
    }


async def test_a_closed_account_has_status_02(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed(ALICE, housing_fund={"status": "closed", "balance": "0.99"})

    response = await client.post("/housing_fund/account/query", data={"zjhm": ALICE})

    assert response.json()["data"] == {"zhzt": "02", "ye": 99, "yjce": 0}


async def test_no_account_is_a_200_with_ret_0404(client: httpx.AsyncClient, seed: Seed) -> None:
    await seed(BOB)

    response = await client.post("/housing_fund/account/query", data={"zjhm": BOB})

    assert response.status_code == 200
    assert response.json() == {"ret": "0404", "msg": "no account", "data": None}


async def test_a_missing_zjhm_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/housing_fund/account/query", data={"sfzh": ALICE})

    assert response.status_code == 400
    assert response.json()["ret"] == "9999"


@pytest.mark.parametrize(
    "kwargs", [{"json": {"zjhm": ALICE}}, {"content": b"zjhm=" + ALICE.encode()}]
)
async def test_only_a_form_is_accepted(
    client: httpx.AsyncClient, kwargs: dict[str, object]
) -> None:
    response = await client.post("/housing_fund/account/query", **kwargs)  # type: ignore[arg-type]

    assert response.status_code == 415
    assert response.json()["ret"] == "9999"


async def test_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/housing_fund/status")

    assert (response.status_code, response.json()) == (200, {"ret": "0000"})
