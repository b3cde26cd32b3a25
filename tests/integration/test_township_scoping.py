"""Four-level scoping over real HTTP: a township key sees its township's households and no
other's (404, never 403), a county key sees every township of its county and the county's
households without a township, a province key sees the whole province."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Role, normalise_region_prefix
from service.auth.service import create_api_key
from service.models import ApiKey, OutboxEvent, Webhook, WebhookDelivery
from service.models.base import utcnow
from service.webhook import outbox
from tests.conftest import CLIENT_TLS, LiveService
from tests.factories import make_id_number, member, verification_body

COUNTY = "530102"
TOWN_A = "530102001"
TOWN_B = "530102002"
WAIT = {"Prefer": "wait=15"}


@dataclass
class World:
    """Keys of three roles at every level, and three completed households of one county:
    one in township A, one in township B, one without a township."""

    clients: dict[tuple[str, str], httpx.AsyncClient]
    in_a: str
    in_b: str
    county_only: str
    person_in_a: str

    def key(self, role: str, scope: str) -> httpx.AsyncClient:
        return self.clients[(role, scope)]


async def household(
    client: httpx.AsyncClient, http: httpx.AsyncClient, **extra: Any
) -> tuple[str, str]:
    """A completed household of COUNTY (nothing on record at any agency): its verification
    id and its member's ID number."""
    id_number = make_id_number(COUNTY)
    assert (await http.post("/sandbox/people", json={"id_number": id_number})).status_code < 300
    body = verification_body([member(id_number)], region_code=COUNTY, as_of=None) | extra
    created = await client.post("/v1/verifications", json=body, headers=WAIT)
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "completed"
    return str(created.json()["id"]), id_number


@pytest.fixture(scope="module")
async def world(
    live_service: LiveService, session_factory: async_sessionmaker[AsyncSession]
) -> Any:
    clients: dict[tuple[str, str], httpx.AsyncClient] = {}
    for role in ("caseworker", "approver", "auditor"):
        for scope in (TOWN_A, TOWN_B, COUNTY, "53", "36"):
            async with session_factory() as session:
                _, token = await create_api_key(
                    session, role=Role(role), region=scope, name=f"{role}-{scope}"
                )
                await session.commit()
            clients[(role, scope)] = httpx.AsyncClient(
                base_url=live_service.base_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
                verify=CLIENT_TLS,
            )
    async with httpx.AsyncClient(
        base_url=live_service.base_url, timeout=30, verify=CLIENT_TLS
    ) as http:
        in_a, person_in_a = await household(
            clients[("caseworker", TOWN_A)], http, township_code=TOWN_A, reference="in-a"
        )
        in_b, _ = await household(
            clients[("caseworker", TOWN_B)], http, township_code=TOWN_B, reference="in-b"
        )
        county_only, _ = await household(clients[("caseworker", COUNTY)], http, reference="cty")
    made = World(clients, in_a, in_b, county_only, person_in_a)
    yield made
    for client in clients.values():
        await client.aclose()


async def listed(client: httpx.AsyncClient, **params: Any) -> set[str]:
    response = await client.get("/v1/verifications", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


class TestKeyRegion:
    def test_a_township_code_is_a_region(self) -> None:
        assert normalise_region_prefix("530102001") == "530102001"

    @pytest.mark.parametrize("value", ["5301020", "53010200", "5301020011", "５３０１０２００１"])
    def test_other_lengths_and_non_ascii_digits_are_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="township"):
            normalise_region_prefix(value)

    @pytest.mark.parametrize(("value", "said"), [("", "empty"), ("  ", "empty")])
    def test_every_region_is_said_in_so_many_words_never_by_nothing(
        self, value: str, said: str
    ) -> None:
        """An unset variable in a script (`--region "$REGION"`) is not a key of every
        region: that takes 00 or *."""
        with pytest.raises(ValueError, match=said):
            normalise_region_prefix(value)
        assert normalise_region_prefix("00") == normalise_region_prefix(" * ") == ""

    @pytest.mark.parametrize("value", ["99", "000000", "100000", "9901"])
    def test_a_region_of_no_province_is_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="GB/T 2260 province"):
            normalise_region_prefix(value)


class TestCreate:
    async def test_the_township_is_stored_and_shown(self, world: World) -> None:
        response = await world.key("caseworker", TOWN_A).get(f"/v1/verifications/{world.in_a}")
        assert response.status_code == 200
        assert response.json()["township_code"] == TOWN_A
        county = await world.key("caseworker", COUNTY).get(f"/v1/verifications/{world.county_only}")
        assert county.json()["township_code"] is None

    @pytest.mark.parametrize(
        ("township", "message"),
        [
            ("530103001", "first 6 digits must be the region_code"),
            ("53010200", "must be 9 digits"),
            ("５３０１０２００１", "must be 9 digits"),
        ],
    )
    async def test_a_township_outside_region_code_is_422_naming_the_field(
        self, world: World, township: str, message: str
    ) -> None:
        body = verification_body([member(make_id_number())], township_code=township)
        response = await world.key("caseworker", COUNTY).post("/v1/verifications", json=body)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["loc"] == ["body", "township_code"]
        assert message in error["msg"]

    @pytest.mark.parametrize("township", [TOWN_B, None])
    async def test_a_township_key_files_for_its_own_township_only(
        self, world: World, township: str | None
    ) -> None:
        body = verification_body([member(make_id_number())], township_code=township)
        response = await world.key("caseworker", TOWN_A).post("/v1/verifications", json=body)
        assert response.status_code == 403, response.text
        [error] = response.json()["errors"]
        assert error["loc"] == ["body", "township_code"]
        if township is None:  # not "outside": the caller never sent one
            assert error["msg"] == f"required for a key of township {TOWN_A}"
            assert response.json()["detail"].startswith("township_code is required")
        else:
            assert error["msg"] == "outside the key's township"


class TestRead:
    """Another township's household is absent: get, report, rescore, decision are 404."""

    @pytest.mark.parametrize(
        ("role", "method", "suffix", "body"),
        [
            ("caseworker", "GET", "", None),
            ("caseworker", "GET", "/report", None),
            ("approver", "POST", "/rescore", {}),
            ("approver", "POST", "/decision", {"decision": "approve", "reason": "checked"}),
        ],
    )
    async def test_township_b_cannot_reach_township_a(
        self, world: World, role: str, method: str, suffix: str, body: Any
    ) -> None:
        absent = "00000000-0000-0000-0000-000000000000"
        for scope in (TOWN_B, "36"):
            client = world.key(role, scope)
            response = await client.request(
                method, f"/v1/verifications/{world.in_a}{suffix}", json=body
            )
            assert response.status_code == 404, (scope, response.text)
            # Exactly what an id that does not exist gets: nothing tells them apart.
            nowhere = await client.request(method, f"/v1/verifications/{absent}{suffix}", json=body)
            assert (response.json() | {"instance": ""}) == (nowhere.json() | {"instance": ""})

    @pytest.mark.parametrize("suffix", ["", "/report"])
    async def test_own_township_county_and_province_reach_it(
        self, world: World, suffix: str
    ) -> None:
        for scope in (TOWN_A, COUNTY, "53"):
            response = await world.key("caseworker", scope).get(
                f"/v1/verifications/{world.in_a}{suffix}"
            )
            assert response.status_code == 200, (scope, response.text)
        rescored = await world.key("approver", TOWN_A).post(
            f"/v1/verifications/{world.in_a}/rescore", json={}
        )
        assert rescored.status_code == 200, rescored.text

    async def test_a_township_key_does_not_see_the_county_households_without_township(
        self, world: World
    ) -> None:
        response = await world.key("caseworker", TOWN_A).get(
            f"/v1/verifications/{world.county_only}"
        )
        assert response.status_code == 404


class TestList:
    async def test_each_level_lists_what_it_covers(self, world: World) -> None:
        mine = {world.in_a, world.in_b, world.county_only}
        assert await listed(world.key("caseworker", TOWN_A)) & mine == {world.in_a}
        assert await listed(world.key("caseworker", TOWN_B)) & mine == {world.in_b}
        assert await listed(world.key("caseworker", COUNTY)) & mine == mine
        assert await listed(world.key("caseworker", "53")) & mine == mine
        assert await listed(world.key("caseworker", "36")) & mine == set()

    async def test_the_township_filter_narrows_inside_the_callers_region(
        self, world: World
    ) -> None:
        mine = {world.in_a, world.in_b, world.county_only}
        county = world.key("caseworker", COUNTY)
        assert await listed(county, township_code=TOWN_A) & mine == {world.in_a}
        assert await listed(county, township_code=TOWN_A, region_code="5301") & mine == {world.in_a}
        assert await listed(county, township_code=TOWN_A, region_code="530103") & mine == set()
        # A township key asking for another township finds nothing, not its own.
        assert await listed(world.key("caseworker", TOWN_A), township_code=TOWN_B) == set()

    async def test_a_bad_township_filter_is_422(self, world: World) -> None:
        response = await world.key("caseworker", COUNTY).get(
            "/v1/verifications", params={"township_code": "5301020１"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "township_code"]


@pytest.mark.parametrize(
    ("scope", "sees"), [(TOWN_A, True), (TOWN_B, False), (COUNTY, True), ("53", True)]
)
async def test_people_search_and_the_audit_trail_are_scoped(
    world: World, scope: str, sees: bool
) -> None:
    """An auditor finds a township's household, and the events about it (stored with its
    township code), only with a key whose scope covers that township."""
    auditor = world.key("auditor", scope)
    search = await auditor.post("/v1/people/search", json={"id_number": world.person_in_a})
    assert search.status_code == 200, search.text
    assert [item["id"] for item in search.json()["items"]] == ([world.in_a] if sees else [])
    events = await auditor.get("/v1/audit", params={"object_id": world.in_a})
    assert events.status_code == 200, events.text
    items = events.json()["items"]
    # Township B's auditor sees its own keys' refused probes (the tests above make them),
    # never an event that happened to township A's household.
    about_a = [event for event in items if event["object_region"] == TOWN_A]
    assert bool(about_a) == sees
    assert all(event["outcome"] != "ok" for event in items if event not in about_a)


async def test_batch_lines_carry_their_township(world: World) -> None:
    """A township key's batch: a line of its township is a household of that township; a
    line of another township, or of none, is refused naming township_code."""
    lines = [
        verification_body([member(make_id_number())], township_code=TOWN_A),
        verification_body([member(make_id_number())], township_code=TOWN_B),
        verification_body([member(make_id_number())]),
    ]
    client = world.key("caseworker", TOWN_A)
    created = await client.post("/v1/batches", json={"households": lines})
    assert created.status_code == 201, created.text
    batch = created.json()
    assert (batch["households"], batch["invalid_lines"]) == (1, 2)
    errors = (await client.get(f"/v1/batches/{batch['id']}/errors")).json()["items"]
    assert [(e["line"], e["errors"][0]["loc"]) for e in errors] == [
        (2, ["body", "township_code"]),
        (3, ["body", "township_code"]),
    ]
    [line] = (await client.get(f"/v1/batches/{batch['id']}/verifications")).json()["items"]
    stored = await client.get(f"/v1/verifications/{line['id']}")
    assert stored.json()["township_code"] == TOWN_A
    assert (
        await world.key("caseworker", TOWN_B).get(f"/v1/batches/{batch['id']}")
    ).status_code == 404


async def test_webhook_events_reach_the_households_township_only(
    world: World, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """An event about a township's household goes to the webhooks of that township, its
    county and above; not to a neighbouring township's."""
    async with session_factory() as session:
        keys = await session.scalars(select(ApiKey.id).limit(1))
        creator = keys.one()
        hooks = {
            scope: Webhook(
                url="https://receiver.example.cn/hook",
                events=["decision.recorded"],
                secret="s" * 32,
                region_prefix=scope,
                active=True,
                created_by=creator,
                created_at=utcnow(),
            )
            for scope in (TOWN_A, TOWN_B, COUNTY, "36")
        }
        session.add_all(hooks.values())
        await session.flush()
        event = await outbox.record(
            session, "decision.recorded", COUNTY, {"verification_id": "x"}, township_code=TOWN_A
        )
        receivers = set(
            await session.scalars(
                select(WebhookDelivery.webhook_id).where(WebhookDelivery.event_id == event)
            )
        )
        stored = await session.get(OutboxEvent, event)
        assert stored is not None
        payload = stored.payload
        await session.rollback()
    assert receivers == {hooks[TOWN_A].id, hooks[COUNTY].id}
    # The event says its township, as the docs promise: a county's receiver routes by it.
    assert payload["data"] == {"verification_id": "x", "township_code": TOWN_A}
