"""The near-relative registry (近亲属备案) over HTTP, and the matches the scorer reads."""

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.assessment import NearRelativeMatch
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.models import NearRelative
from service.near_relative.service import near_relative_matches
from tests.conftest import ClientFactory
from tests.factories import make_id_number, near_relative_body

PATH = "/v1/near-relatives"


async def register(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    changes.setdefault("relative_id_number", make_id_number("530102"))
    response = await client.post(PATH, json=near_relative_body(**changes))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def listed_ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    """Every registration id the caller can list, following cursors to the end."""
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(PATH, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


class TestCreate:
    async def test_auditor_registers_and_gets_a_masked_answer(
        self, api_client: ClientFactory
    ) -> None:
        auditor = await api_client(role="auditor", region="53")
        relative = make_id_number("530102")

        response = await auditor.post(PATH, json=near_relative_body(relative))

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["relative_id_number"] == relative[:6] + "********" + relative[-4:]
        assert (body["relative_name"], body["staff_name"]) == ("张**", "李**")
        assert (body["staff_position"], body["relationship"]) == ("村委会主任", "spouse")
        assert body["region_code"] == "530102"
        assert body["revoked_at"] is None
        assert relative not in response.text
        assert "三丰" not in response.text
        assert "建国" not in response.text

    async def test_admin_of_every_region_may_register(self, api_client: ClientFactory) -> None:
        admin = await api_client(role="admin", region="00")
        await register(admin, region_code="36")

    async def test_lower_case_x_is_accepted_and_stored_upper_case(
        self, api_client: ClientFactory, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        auditor = await api_client(role="auditor", region="11")
        created = await register(
            auditor, region_code="110105", relative_id_number="11010519491231002x"
        )
        async with session_factory() as session:
            row = await session.get(NearRelative, created["id"])
        assert row is not None
        assert row.relative_id_number == "11010519491231002X"

    async def test_the_same_relative_twice_is_409_until_revoked(
        self, api_client: ClientFactory
    ) -> None:
        auditor = await api_client(role="auditor", region="53")
        relative = make_id_number("530102")
        first = await register(auditor, relative_id_number=relative)

        again = await auditor.post(PATH, json=near_relative_body(relative_id_number=relative))
        await auditor.post(f"{PATH}/{first['id']}/revoke", json={"reason": "ended"})
        after_revoking = await auditor.post(
            PATH, json=near_relative_body(relative_id_number=relative)
        )

        assert again.status_code == 409
        assert first["id"] in again.json()["detail"]
        assert relative not in again.text
        assert after_revoking.status_code == 201

    async def test_unknown_field_is_422(self, api_client: ClientFactory) -> None:
        auditor = await api_client(role="auditor", region="53")
        response = await auditor.post(
            PATH, json={**near_relative_body(make_id_number("530102")), "colour": "blue"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "colour"]

    @pytest.mark.parametrize(
        "bad_id",
        [
            "110105194912310021",  # wrong check character
            "11010519491331002X",  # month 13
            "1101051949123100",  # too short
        ],
    )
    async def test_invalid_id_number_is_422_and_not_echoed(
        self, api_client: ClientFactory, bad_id: str
    ) -> None:
        auditor = await api_client(role="auditor", region="53")
        response = await auditor.post(PATH, json=near_relative_body(bad_id))
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["loc"] == ["body", "relative_id_number"]
        assert bad_id not in response.text

    @pytest.mark.parametrize(
        ("change", "loc"),
        [
            ({"region_code": "53010x"}, ["body", "region_code"]),
            ({"region_code": "5"}, ["body", "region_code"]),
            ({"relationship": "friend"}, ["body", "relationship"]),
            ({"staff_position": ""}, ["body", "staff_position"]),
        ],
    )
    async def test_bad_field_is_named(
        self, api_client: ClientFactory, change: dict[str, Any], loc: list[str]
    ) -> None:
        auditor = await api_client(role="auditor", region="53")
        body = near_relative_body(make_id_number("530102"), **change)
        response = await auditor.post(PATH, json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == loc

    @pytest.mark.parametrize("role", ["caseworker", "approver", "operator"])
    async def test_other_roles_cannot_register(self, api_client: ClientFactory, role: str) -> None:
        client = await api_client(role=role, region="53")
        response = await client.post(PATH, json=near_relative_body(make_id_number("530102")))
        assert response.status_code == 403

    async def test_region_outside_the_keys_scope_is_403(self, api_client: ClientFactory) -> None:
        auditor = await api_client(role="auditor", region="36")
        response = await auditor.post(PATH, json=near_relative_body(make_id_number("530102")))
        assert response.status_code == 403
        assert response.json()["errors"][0]["loc"] == ["body", "region_code"]

    async def test_a_county_key_cannot_register_at_province_level(
        self, api_client: ClientFactory
    ) -> None:
        auditor = await api_client(role="auditor", region="530102")
        response = await auditor.post(
            PATH, json=near_relative_body(make_id_number("530102"), region_code="53")
        )
        assert response.status_code == 403


class TestListing:
    async def test_pages_newest_first_without_gaps_or_repeats(
        self, api_client: ClientFactory
    ) -> None:
        auditor = await api_client(role="auditor", region="530181")
        created = [(await register(auditor, region_code="530181"))["id"] for _ in range(5)]

        seen = await listed_ids(auditor, limit=2)

        assert len(seen) == len(set(seen))
        assert [item for item in seen if item in created] == list(reversed(created))

    async def test_only_the_callers_region_is_listed(self, api_client: ClientFactory) -> None:
        kunming = await api_client(role="auditor", region="530182")
        created = await register(kunming, region_code="530182")
        jiangxi = await api_client(role="approver", region="36")

        response = await jiangxi.get(PATH, params={"limit": 200})

        assert response.status_code == 200
        assert all(item["region_code"].startswith("36") for item in response.json()["items"])
        assert created["id"] not in await listed_ids(jiangxi, limit=200)
        yunnan = await api_client(role="approver", region="53")
        assert created["id"] in await listed_ids(yunnan, limit=200)

    async def test_listing_is_masked(self, api_client: ClientFactory) -> None:
        auditor = await api_client(role="auditor", region="530183")
        relative = make_id_number("530183")
        await register(auditor, region_code="530183", relative_id_number=relative)

        response = await auditor.get(PATH, params={"limit": 200})

        assert response.status_code == 200
        assert relative not in response.text
        assert "三丰" not in response.text

    async def test_caseworker_cannot_list(self, api_client: ClientFactory) -> None:
        caseworker = await api_client(role="caseworker", region="53")
        response = await caseworker.get(PATH)
        assert response.status_code == 403

    async def test_bad_cursor_is_422(self, api_client: ClientFactory) -> None:
        auditor = await api_client(role="auditor", region="53")
        response = await auditor.get(PATH, params={"cursor": "!!not-a-cursor"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


class TestRevoke:
    async def test_revokes_once_then_409_and_the_registration_is_kept(
        self, api_client: ClientFactory
    ) -> None:
        auditor = await api_client(role="auditor", region="530184", name="Kunming audit office")
        created = await register(auditor, region_code="530184")
        url = f"{PATH}/{created['id']}/revoke"

        first = await auditor.post(url, json={"reason": "任职结束"})
        second = await auditor.post(url, json={"reason": "again"})

        assert first.status_code == 200, first.text
        revoked = first.json()
        assert revoked["id"] == created["id"]
        assert revoked["revoked_at"] is not None
        assert revoked["revoked_reason"] == "任职结束"
        # Who acted is named as on decisions: the key's name, and its id beside it.
        assert revoked["revoked_by"] == revoked["registered_by"] == "Kunming audit office"
        assert (
            revoked["revoked_by_key_id"]
            == revoked["registered_by_key_id"]
            != "Kunming audit office"
        )
        assert revoked["relative_id_number"] == created["relative_id_number"]
        assert second.status_code == 409
        assert second.json()["type"].endswith("/near-relative-revoked")
        listed = (await auditor.get(PATH, params={"limit": 200})).json()["items"]
        [kept] = [item for item in listed if item["id"] == created["id"]]
        assert kept["revoked_reason"] == "任职结束"

    async def test_the_list_filters_by_region_and_by_whether_revoked(
        self, api_client: ClientFactory
    ) -> None:
        auditor = await api_client(role="auditor", region="5301")
        here = await register(auditor, region_code="530191")
        there = await register(auditor, region_code="530192")
        gone = await register(auditor, region_code="530191")
        revoked = await auditor.post(f"{PATH}/{gone['id']}/revoke", json={"reason": "任职结束"})
        assert revoked.status_code == 200, revoked.text

        county = await listed_ids(auditor, region_code="530191", limit=200)
        in_force = await listed_ids(auditor, region_code="530191", revoked="false", limit=200)
        ended = await listed_ids(auditor, region_code="530191", revoked="true", limit=200)
        elsewhere = await listed_ids(auditor, region_code="36", limit=200)

        assert set(county) == {here["id"], gone["id"]}
        assert there["id"] not in county
        assert (in_force, ended) == ([here["id"]], [gone["id"]])
        assert elsewhere == []  # outside the key's region: never widened to it
        for params in ({"region_code": "5"}, {"revoked": "maybe"}):
            assert (await auditor.get(PATH, params=params)).status_code == 422

    async def test_another_regions_registration_is_404(self, api_client: ClientFactory) -> None:
        kunming = await api_client(role="auditor", region="530185")
        created = await register(kunming, region_code="530185")
        jiangxi = await api_client(role="auditor", region="36")

        response = await jiangxi.post(f"{PATH}/{created['id']}/revoke", json={"reason": "x"})

        assert response.status_code == 404
        still = await kunming.post(f"{PATH}/{created['id']}/revoke", json={"reason": "x"})
        assert still.status_code == 200

    async def test_unknown_id_is_404(self, api_client: ClientFactory) -> None:
        auditor = await api_client(role="auditor", region="53")
        response = await auditor.post(f"{PATH}/no-such-id/revoke", json={"reason": "x"})
        assert response.status_code == 404

    async def test_approver_cannot_revoke(self, api_client: ClientFactory) -> None:
        auditor = await api_client(role="auditor", region="53")
        created = await register(auditor)
        approver = await api_client(role="approver", region="53")
        response = await approver.post(f"{PATH}/{created['id']}/revoke", json={"reason": "x"})
        assert response.status_code == 403

    @pytest.mark.parametrize("body", [{"reason": ""}, {}, {"reason": "x", "by": "me"}])
    async def test_bad_body_is_422(self, api_client: ClientFactory, body: dict[str, Any]) -> None:
        auditor = await api_client(role="auditor", region="53")
        created = await register(auditor)
        response = await auditor.post(f"{PATH}/{created['id']}/revoke", json=body)
        assert response.status_code == 422


class TestNearRelativeMatches:
    async def test_only_active_registrations_match(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        """Revoked registrations are excluded; duplicates count once; order is stable."""
        active, revoked, unregistered = (make_id_number("530186", "19580717") for _ in range(3))
        async with session_factory() as session:
            key, _ = await create_api_key(session, role=Role.auditor, region="53")

            def row(id_number: str, position: str, relation: str, **extra: Any) -> NearRelative:
                return NearRelative(
                    region_code="530186",
                    staff_name="李建国",
                    staff_position=position,
                    relative_id_number=id_number,
                    relative_name="张三丰",
                    relationship=relation,
                    registered_by=key.id,
                    **extra,
                )

            gone = {"revoked_at": datetime.now(UTC), "revoked_by": key.id, "revoked_reason": "x"}
            session.add_all(
                [
                    row(active, "村委会主任", "spouse"),
                    row(active, "村委会主任", "spouse"),
                    row(active, "民政专干", "sibling"),
                    row(revoked, "村委会主任", "child", **gone),
                    row(active, "乡长", "parent", **gone),
                ]
            )
            await session.flush()

            matches = await near_relative_matches(session, [unregistered, revoked, active])
            nothing = await near_relative_matches(session, [])
            await session.rollback()

        assert matches == (
            NearRelativeMatch(id_number=active, staff_position="村委会主任", relationship="spouse"),
            NearRelativeMatch(id_number=active, staff_position="民政专干", relationship="sibling"),
        )
        assert nothing == ()

    async def test_a_revocation_over_http_stops_the_match(
        self, api_client: ClientFactory, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        auditor = await api_client(role="auditor", region="530187")
        relative = make_id_number("530187", "19580718")
        created = await register(auditor, region_code="530187", relative_id_number=relative)

        async with session_factory() as session:
            before = await near_relative_matches(session, [relative.lower()])
        await auditor.post(f"{PATH}/{created['id']}/revoke", json={"reason": "任职结束"})
        async with session_factory() as session:
            after = await near_relative_matches(session, [relative])

        assert before == (
            NearRelativeMatch(
                id_number=relative, staff_position="村委会主任", relationship="spouse"
            ),
        )
        assert after == ()
