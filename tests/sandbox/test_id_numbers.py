"""`GET /id-numbers`: valid ID numbers for test households, each with records."""

import httpx
import pytest

from schemas.identity import id_number_problem


async def test_the_numbers_are_valid_distinct_and_as_asked(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/id-numbers", params={"region_code": "530111", "born": "1975-02-28", "count": 20}
    )
    assert response.status_code == 200
    numbers = response.json()["id_numbers"]
    assert len(numbers) == len(set(numbers)) == 20
    for number in numbers:
        assert id_number_problem(number) is None
        assert number.startswith("53011119750228")
    assert [number[14:17] for number in numbers] == [f"{n:03d}" for n in range(1, 21)]


async def test_the_defaults_give_three_that_hedui_accepts_and_partners_know(
    client: httpx.AsyncClient,
) -> None:
    numbers = (await client.get("/id-numbers")).json()["id_numbers"]
    assert len(numbers) == 3
    assert all(id_number_problem(number) is None for number in numbers)
    answer = await client.post(
        "/pensions/batch", json={"requests": [{"seq": 1, "sfzh": numbers[0]}]}
    )
    assert answer.status_code == 200


async def test_sequence_numbers_stop_at_999(client: httpx.AsyncClient) -> None:
    numbers = (await client.get("/id-numbers", params={"first": 998, "count": 5})).json()
    assert [number[14:17] for number in numbers["id_numbers"]] == ["998", "999"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"region_code": "53010"}, "region_code"),
        ({"born": "1849-12-31"}, "born"),
        ({"born": "2999-01-01"}, "born"),
        ({"count": 101}, "count"),
        ({"first": 0}, "first"),
    ],
)
async def test_bad_parameters_are_a_problem_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    response = await client.get("/id-numbers", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.text


async def test_the_sandbox_says_it_is_up(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


async def test_the_documented_example_is_what_the_defaults_give(client: httpx.AsyncClient) -> None:
    """The OpenAPI example of the answer is real: valid numbers, the defaults' first two."""
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    [example] = schema["SampleIdNumbers"]["properties"]["id_numbers"]["examples"]
    numbers = (await client.get("/id-numbers")).json()["id_numbers"]
    assert example == numbers[:2]
