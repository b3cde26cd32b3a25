"""The sandbox's own OpenAPI document says what its agencies really take and answer: the
XML and form bodies they read by hand, and the 422 problem+json a refused request gets."""

from typing import Any

import httpx
import jsonschema

PROBLEM = "application/problem+json"


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    served: dict[str, Any] = (await client.get("/openapi.json")).json()
    return served


async def test_the_vehicles_query_takes_and_answers_xml(client: httpx.AsyncClient) -> None:
    operation = (await document(client))["paths"]["/vehicles/query"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert list(body["content"]) == ["application/xml"]
    example = body["content"]["application/xml"]["example"]
    assert "<VehicleQuery>" in example
    assert list(operation["responses"]["200"]["content"]) == ["application/xml"]

    answered = await client.post(
        "/vehicles/query", content=example, headers={"content-type": "application/xml"}
    )
    assert answered.status_code == 200
    assert answered.headers["content-type"].startswith("application/xml")


async def test_the_housing_fund_query_takes_a_form(client: httpx.AsyncClient) -> None:
    operation = (await document(client))["paths"]["/housing_fund/account/query"]["post"]
    content = operation["requestBody"]["content"]
    assert list(content) == ["application/x-www-form-urlencoded"]
    form = content["application/x-www-form-urlencoded"]
    assert form["schema"]["required"] == ["zjhm"]
    jsonschema.validate(form["example"], form["schema"])

    answered = await client.post("/housing_fund/account/query", data=form["example"])
    assert answered.status_code == 200
    assert answered.json()["ret"] in {"0000", "0404"}


async def test_a_refused_seeding_is_documented_as_the_problem_it_is(
    client: httpx.AsyncClient,
) -> None:
    """`POST /people`'s 422 is problem+json with `errors`, as answered, and no 422 of the
    document is FastAPI's `HTTPValidationError`."""
    served = await document(client)
    refused = served["paths"]["/people"]["post"]["responses"]["422"]
    assert list(refused["content"]) == [PROBLEM]
    assert refused["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    schemas = served["components"]["schemas"]
    assert "errors" in schemas["Problem"]["properties"]
    assert "HTTPValidationError" not in schemas

    answer = await client.post("/people", json={"id_number": "530102199001011230"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    resolver = {"components": served["components"], **schemas["Problem"]}
    for sent in (answer.json(), refused["content"][PROBLEM]["example"]):
        jsonschema.validate(sent, resolver)
        assert sent["errors"][0]["loc"] == ["body", "id_number"]

    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            content = operation["responses"].get("422", {}).get("content", {PROBLEM: {}})
            assert list(content) == [PROBLEM], (method, path)
