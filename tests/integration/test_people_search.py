"""`POST /v1/people/search`: an auditor finds a person's verifications through the blind
index; the ID number travels in the body, results are scoped and masked like any list."""

from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, verification_body

PATH = "/v1/people/search"


async def submit(client: httpx.AsyncClient, people: list[str], region: str) -> str:
    body = verification_body(
        [
            member(person, relation="applicant" if i == 0 else "child")
            for i, person in enumerate(people)
        ],
        region_code=region,
    )
    response = await client.post("/v1/verifications", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def found(client: httpx.AsyncClient, id_number: str, **extra: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        body = {"id_number": id_number, **extra, **({"cursor": cursor} if cursor else {})}
        response = await client.post(PATH, json=body)
        assert response.status_code == 200, response.text
        assert id_number not in response.text
        page = response.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_auditor_finds_every_verification_of_a_person_in_region(
    api_client: ClientFactory,
) -> None:
    person, other = make_id_number("530102"), make_id_number("530102")
    yunnan = await api_client(role="caseworker", region="53")
    jiangxi = await api_client(role="caseworker", region="36")
    first = await submit(yunnan, [person, other], "530102")
    second = await submit(yunnan, [other, person.lower()], "530103")
    elsewhere = await submit(jiangxi, [person], "360102")
    await submit(yunnan, [other], "530102")  # without the person

    auditor = await api_client(role="auditor", region="53")
    assert await found(auditor, person) == [second, first]
    assert await found(auditor, person, limit=1) == [second, first]
    assert await found(auditor, person.lower()) == [second, first]

    admin = await api_client(role="admin", region="00")
    assert await found(admin, person) == [elsewhere, second, first]

    narrow = await api_client(role="auditor", region="530102")
    assert await found(narrow, person) == [first]


async def test_members_are_masked(api_client: ClientFactory) -> None:
    person = make_id_number("530102")
    caseworker = await api_client()
    await submit(caseworker, [person], "530102")
    auditor = await api_client(role="auditor")
    response = await auditor.post(PATH, json={"id_number": person})
    members = response.json()["items"][0]["members"]
    assert members[0]["id_number"] == person[:6] + "********" + person[-4:]
    assert members[0]["name"] == "张*"


async def test_unknown_person_finds_nothing(api_client: ClientFactory) -> None:
    auditor = await api_client(role="auditor")
    assert await found(auditor, make_id_number("530102")) == []


async def test_only_auditors_and_admins(api_client: ClientFactory) -> None:
    for role in ("caseworker", "approver", "operator", "integrator"):
        client = await api_client(role=role)
        response = await client.post(PATH, json={"id_number": make_id_number()})
        assert response.status_code == 403, role


async def test_bad_id_number_is_a_problem_naming_the_field(api_client: ClientFactory) -> None:
    auditor = await api_client(role="auditor")
    good = make_id_number()
    bad = good[:-1] + ("0" if not good.endswith("0") else "1")  # the wrong check character
    for body in (
        {"id_number": bad},
        {"id_number": "x" * 5000},
        {},
        {"id_number": make_id_number(), "extra": 1},
    ):
        response = await auditor.post(PATH, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["loc"][0] == "body"
        assert str(body.get("id_number", "")) not in response.text or not body.get("id_number")


@pytest.mark.parametrize("limit", ["5", True, 5.5])
async def test_a_limit_that_is_not_a_json_number_is_422(
    api_client: ClientFactory, limit: object
) -> None:
    """As everywhere else in the API: a number is a JSON number, not text or a boolean."""
    auditor = await api_client(role="auditor")
    response = await auditor.post(PATH, json={"id_number": make_id_number(), "limit": limit})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "limit"]


async def test_no_person_route_takes_an_id_number_in_the_url(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    people = [path for path in schema["paths"] if path.startswith("/v1/people")]
    assert people == ["/v1/people/search"]
    assert list(schema["paths"]["/v1/people/search"]) == ["post"]


async def test_a_person_search_names_whom_it_looked_up_masked(api_client: ClientFactory) -> None:
    person = make_id_number("530102")
    auditor = await api_client(role="auditor", region="53", name="person search probe")
    assert (await auditor.post(PATH, json={"id_number": person})).status_code == 200

    admin = await api_client(role="auditor", region="00")
    listed = await admin.get("/v1/audit", params={"action": "person.search", "limit": 500})
    [event] = [
        item for item in listed.json()["items"] if item["actor_name"] == "person search probe"
    ]
    assert event["detail"] == f"person {person[:6]}********{person[-4:]}"
    assert person not in listed.text


async def test_who_looked_a_person_up_is_found_by_their_id_number(
    api_client: ClientFactory,
) -> None:
    """The snooping case the trail exists for: an auditor asks who looked this person up,
    and finds the lookup (not a lookup of someone else), the person in no household yet."""
    person, other = make_id_number("530102"), make_id_number("530102")
    snoop = await api_client(role="auditor", region="53", name="curious auditor")
    assert (await snoop.post(PATH, json={"id_number": person})).status_code == 200
    assert (await snoop.post(PATH, json={"id_number": other})).status_code == 200

    auditor = await api_client(role="auditor", region="00")
    found = await auditor.post(
        "/v1/audit/search", json={"id_number": person, "action": "person.search"}
    )

    assert found.status_code == 200, found.text
    [event] = found.json()["items"]
    assert event["actor_name"] == "curious auditor"
    assert event["detail"] == f"person {person[:6]}********{person[-4:]}"
    assert person not in found.text
