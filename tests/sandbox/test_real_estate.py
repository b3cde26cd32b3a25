"""Real estate: many owners per search, answered in pages linked by tokens."""

import httpx
import pytest

from tests.sandbox.helpers import ALICE, BOB, Seed, valid_id

SEARCH = "/real_estate/registrations/search"
CAROL = valid_id("53010219900101123")


def holding(certificate: str, usage: str = "residential") -> dict[str, object]:
    return {"certificate": certificate, "usage": usage, "area_m2": "80.5", "region_code": "530102"}


@pytest.fixture
async def three_owners(seed: Seed) -> list[str]:
    """Five certificates over three owners, one of whom owns nothing."""
    await seed(ALICE, real_estate=[holding("A1"), holding("A2", "commercial")])
    await seed(BOB)
    await seed(CAROL, real_estate=[holding("C1"), holding("C2", "land"), holding("C3")])
    return [ALICE, BOB, CAROL]


async def walk(
    client: httpx.AsyncClient, id_numbers: list[str], page_size: int | None
) -> list[list[str]]:
    """Follow next_page_token to the end; the certificates of each page."""
    pages, token = [], None
    while True:
        params = {
            k: v for k, v in (("page_size", page_size), ("page_token", token)) if v is not None
        }
        response = await client.post(SEARCH, params=params, json={"id_numbers": id_numbers})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["certificate"] for item in body["items"]])
        token = body["next_page_token"]
        if token is None:
            return pages


async def test_an_item_carries_its_owner_and_registration(
    client: httpx.AsyncClient, three_owners: list[str]
) -> None:
    response = await client.post(SEARCH, json={"id_numbers": [ALICE]})

    assert response.json()["items"][0] == {
        "owner_id_number": ALICE,
        "certificate": "A1",
        "usage": "residential",
        "area_m2": 80.5,
        "region_code": "530102",
    }


@pytest.mark.parametrize(
    ("page_size", "pages"),
    [
        (None, [["A1", "A2"], ["C1", "C2"], ["C3"]]),  # default page size is 2
        (1, [["A1"], ["A2"], ["C1"], ["C2"], ["C3"]]),
        (5, [["A1", "A2", "C1", "C2", "C3"]]),
        (20, [["A1", "A2", "C1", "C2", "C3"]]),
    ],
)
async def test_walking_the_pages_yields_every_registration_once(
    client: httpx.AsyncClient,
    three_owners: list[str],
    page_size: int | None,
    pages: list[list[str]],
) -> None:
    assert await walk(client, three_owners, page_size) == pages


async def test_nobody_owning_anything_is_one_empty_page(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(BOB)

    response = await client.post(SEARCH, json={"id_numbers": [BOB]})

    assert response.json() == {"items": [], "next_page_token": None}


async def test_a_token_only_works_with_its_own_search(
    client: httpx.AsyncClient, three_owners: list[str]
) -> None:
    first = await client.post(SEARCH, json={"id_numbers": three_owners})
    token = first.json()["next_page_token"]

    response = await client.post(SEARCH, params={"page_token": token}, json={"id_numbers": [CAROL]})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_page_token"


@pytest.mark.parametrize("token", ["garbage", "MC5hYmM", "-1"])
async def test_a_forged_token_is_refused(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post(SEARCH, params={"page_token": token}, json={"id_numbers": [ALICE]})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_page_token"


@pytest.mark.parametrize("page_size", ["0", "21", "two"])
async def test_page_size_must_be_1_to_20(client: httpx.AsyncClient, page_size: str) -> None:
    response = await client.post(
        SEARCH, params={"page_size": page_size}, json={"id_numbers": [ALICE]}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_page_size"


@pytest.mark.parametrize("body", [{"id_numbers": ALICE}, {"ids": [ALICE]}, [ALICE]])
async def test_a_malformed_body_is_a_400(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post(SEARCH, json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/real_estate/health")

    assert (response.status_code, response.json()) == (200, {"status": "up"})
