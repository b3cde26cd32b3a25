"""The cursors of the audit trail and of the people search are bound to their list and
filters, as every other list's are: one used with other filters (or another person) is
422, not an empty page that drops results; one the service never issued is 422."""

from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, verification_body


async def test_an_audit_cursor_pages_only_the_filters_it_came_from(
    api_client: ClientFactory,
) -> None:
    auditor = await api_client(role="auditor", region="00")
    for _ in range(3):
        await auditor.get("/v1/audit", params={"limit": 1})
    first = await auditor.get("/v1/audit", params={"action": "audit.read", "limit": 1})
    issued = first.json()["next_cursor"]

    on = await auditor.get("/v1/audit", params={"action": "audit.read", "cursor": issued})
    other = await auditor.get("/v1/audit", params={"action": "report.read", "cursor": issued})
    searched = await auditor.post(
        "/v1/audit/search", json={"action": "audit.read", "cursor": issued}
    )
    made_up = await auditor.get("/v1/audit", params={"cursor": "99999999"})
    made_up_search = await auditor.post("/v1/audit/search", json={"cursor": "99999999"})

    assert on.status_code == 200, on.text
    assert on.json()["items"][0]["id"] < first.json()["items"][0]["id"]
    for refused, where in (
        (other, "query"),
        (searched, "body"),
        (made_up, "query"),
        (made_up_search, "body"),
    ):
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == [where, "cursor"]


async def test_a_people_search_cursor_is_bound_to_its_person(api_client: ClientFactory) -> None:
    person, other = make_id_number("530102"), make_id_number("530102")
    caseworker = await api_client(role="caseworker", region="53")
    for people in ([person], [person], [other], [other]):
        body = verification_body([member(people[0])], region_code="530102")
        assert (await caseworker.post("/v1/verifications", json=body)).status_code == 202
    auditor = await api_client(role="auditor", region="53")
    first = await auditor.post("/v1/people/search", json={"id_number": person, "limit": 1})
    issued = first.json()["next_cursor"]

    on = await auditor.post(
        "/v1/people/search", json={"id_number": person, "limit": 1, "cursor": issued}
    )
    other_person = await auditor.post(
        "/v1/people/search", json={"id_number": other, "limit": 1, "cursor": issued}
    )
    audit_search = await auditor.post(
        "/v1/audit/search", json={"id_number": other, "cursor": issued}
    )

    assert on.status_code == 200, on.text
    assert len(on.json()["items"]) == 1
    assert person not in issued
    for refused in (other_person, audit_search):
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == ["body", "cursor"]


async def test_an_audit_search_cursor_is_bound_to_its_person(api_client: ClientFactory) -> None:
    person, other = make_id_number("530102"), make_id_number("530102")
    caseworker = await api_client(role="caseworker", region="53")
    for someone in (person, other):
        body = verification_body([member(someone)], region_code="530102")
        created = await caseworker.post("/v1/verifications", json=body)
        assert created.status_code == 202, created.text
        for _ in range(2):
            await caseworker.get(f"/v1/verifications/{created.json()['id']}")
    auditor = await api_client(role="auditor", region="53")
    first = await auditor.post("/v1/audit/search", json={"id_number": person, "limit": 1})
    issued = first.json()["next_cursor"]

    on = await auditor.post(
        "/v1/audit/search", json={"id_number": person, "limit": 1, "cursor": issued}
    )
    other_person = await auditor.post(
        "/v1/audit/search", json={"id_number": other, "limit": 1, "cursor": issued}
    )

    assert on.status_code == 200, on.text
    assert other_person.status_code == 422, other_person.text
