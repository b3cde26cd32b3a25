"""Social insurance: one person per form-encoded call, 金保工程 field codes."""

import httpx

from sandbox.records import Person
from tests.sandbox.helpers import ALICE, BOB, FindSynthetic, Seed


async def _query(client: httpx.AsyncClient, id_number: str) -> httpx.Response:
    return await client.post("/social_insurance/query", data={"aac002": id_number})


async def test_answers_the_contributions_of_the_person_asked(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(ALICE, social_insurance={"employer": "县人民医院", "monthly_base": "4500"})
    await seed(BOB)

    alice, bob = await _query(client, ALICE), await _query(client, BOB)

    assert alice.json() == {
        "code": 0,
        "data": {
            "aac002": ALICE,
            "list": [{"aab004": "县人民医院", "aac008": "1", "aic020": "4500.00"}],
        },
    }
    assert bob.json() == {"code": 0, "data": {"aac002": BOB, "list": []}}


async def test_a_query_without_an_id_number_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/social_insurance/query", data={})

    assert response.status_code == 400
    assert response.json()["code"] == 400


async def test_synthetic_people_with_contributions(
    client: httpx.AsyncClient, synthetic_id: FindSynthetic
) -> None:
    def _insured(person: Person) -> bool:
        return person.social_insurance is not None

    id_number = synthetic_id(_insured)

    listed = (await _query(client, id_number)).json()["data"]["list"]

    assert len(listed) == 1
    assert listed[0]["aac008"] in ("1", "2")


async def test_tax_tokens_are_issued_to_the_sandbox_client_only(
    client: httpx.AsyncClient,
) -> None:
    form = {"grant_type": "client_credentials"}
    refused = await client.post("/tax/oauth/token", data=form, auth=("hedui-sandbox", "nope"))
    issued = await client.post(
        "/tax/oauth/token", data=form, auth=("hedui-sandbox", "sandbox-secret")
    )
    token = issued.json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}

    assert refused.status_code == 401
    assert issued.json()["token_type"] == "Bearer"
    assert (await client.get("/tax/health", headers=bearer)).status_code == 200
    assert (
        await client.get("/tax/health", headers={"Authorization": "Bearer x"})
    ).status_code == 401
    assert (await client.delete("/tax/oauth/tokens")).json() == {"revoked": 1}
    assert (await client.get("/tax/health", headers=bearer)).status_code == 401
    assert (await client.get("/tax/health")).status_code == 200  # no token: open, as before
