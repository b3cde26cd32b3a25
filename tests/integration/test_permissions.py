"""docs/permissions.md, tested as a table over real HTTP.

Every `/v1` endpoint of the OpenAPI document is a row of the table; every row is called
with a key of every role (403 exactly where the table says `·`), and, for every role the
row allows, with a key of a neighbouring township: an object of another township is a
404, a list leaves it out.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.app import create_app
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.config import Settings
from service.models import ChangeWarning, Recheck, Webhook
from service.models.base import new_id, utcnow
from tests.conftest import CLIENT_TLS, LiveService
from tests.factories import make_id_number, member, verification_body

DOC = Path(__file__).parents[2] / "docs" / "permissions.md"
ROLES = [role.value for role in Role]
COUNTY = "530102"
# Townships of their own: other modules' households stay out of these counts.
TOWN_A = "530102011"
TOWN_B = "530102012"
ELSEWHERE = "11"  # the role gate's keys: nothing they may create lands near anyone's data
EVERYWHERE = "00"  # the role gate's keys where only a key of every region may
ABSENT = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    allowed: frozenset[str]
    scope: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def table() -> list[Row]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split("<!-- permissions-table:start -->")[1].split(
        "<!-- permissions-table:end -->"
    )[0]
    lines = [line for line in body.strip().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert sorted(header[1:-1]) == sorted(ROLES), "the table's columns are service/auth's roles"
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        method, path = cells[0].strip("`").split(" ", 1)
        marks = dict(zip(header[1:-1], cells[1:-1], strict=True))
        assert set(marks.values()) <= {"✓", "·"}, line
        allowed = frozenset(role for role, mark in marks.items() if mark == "✓")
        rows.append(Row(method, path, allowed, cells[-1]))
    return rows


ROWS = table()


def test_the_table_names_every_endpoint_once() -> None:
    document = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
    served = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        if path.startswith("/v1")
        for method in operations
    }
    documented = [str(row) for row in ROWS]
    assert len(documented) == len(set(documented))
    assert set(documented) == served
    assert all(Role.admin.value in row.allowed for row in ROWS)


@dataclass
class World:
    keys: dict[tuple[str, str], httpx.AsyncClient]
    ids: dict[str, str]
    person_in_a: str


async def _key(
    session_factory: async_sessionmaker[AsyncSession], base_url: str, role: str, region: str
) -> tuple[httpx.AsyncClient, str]:
    async with session_factory() as session:
        key, token = await create_api_key(session, role=Role(role), region=region, name=role)
        await session.commit()
    client = httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )
    return client, key.id


@pytest.fixture(scope="module")
async def world(
    live_service: LiveService, session_factory: async_sessionmaker[AsyncSession]
) -> Any:
    """Keys of every role at every level used here, and one object of each kind in
    township A (the near-relative registration: in the county, where registrations are)."""
    keys: dict[tuple[str, str], httpx.AsyncClient] = {}
    key_ids: dict[tuple[str, str], str] = {}
    for role in ROLES:
        for region in (TOWN_A, TOWN_B, COUNTY, ELSEWHERE, EVERYWHERE):
            keys[(role, region)], key_ids[(role, region)] = await _key(
                session_factory, live_service.base_url, role, region
            )
    person = make_id_number(COUNTY)
    async with httpx.AsyncClient(base_url=live_service.base_url, verify=CLIENT_TLS) as http:
        assert (await http.post("/sandbox/people", json={"id_number": person})).status_code < 300
    body = verification_body([member(person)], township_code=TOWN_A, as_of=None)
    created = await keys[("caseworker", TOWN_A)].post(
        "/v1/verifications", json=body, headers={"Prefer": "wait=15"}
    )
    assert created.status_code == 200, created.text
    assert created.json()["recommendation"] == "eligible"
    household = created.json()["id"]
    decided = await keys[("approver", TOWN_A)].post(
        f"/v1/verifications/{household}/decision", json={"decision": "approve", "reason": "ok"}
    )
    assert decided.status_code == 201, decided.text
    recipients = await keys[("approver", TOWN_A)].get("/v1/recipients")
    [recipient] = [
        r for r in recipients.json()["items"] if r["origin_verification_id"] == household
    ]
    assert recipient["township_code"] == TOWN_A
    batch = await keys[("caseworker", TOWN_A)].post(
        "/v1/batches",
        json={"households": [verification_body([member(make_id_number())], township_code=TOWN_A)]},
    )
    assert batch.status_code == 201, batch.text
    registration = await keys[("auditor", COUNTY)].post(
        "/v1/near-relatives",
        json={
            "region_code": COUNTY,
            "staff_name": "李四",
            "staff_position": "民政所所长",
            "relative_id_number": make_id_number(COUNTY),
            "relative_name": "李五",
            "relationship": "spouse",
        },
    )
    assert registration.status_code == 201, registration.text
    # Rows that need a partner's change over a year, or a receiver host, are made directly.
    async with session_factory() as session:
        recheck = Recheck(
            recipient_id=recipient["id"],
            due_on=date(2027, 5, 21),
            region_code=COUNTY,
            status="completed",
        )
        session.add(recheck)
        await session.flush()
        warning = ChangeWarning(
            recipient_id=recipient["id"],
            recheck_id=recheck.id,
            verification_id=household,
            previous_verification_id=household,
            region_code=COUNTY,
            township_code=TOWN_A,
            code="new_vehicle",
            severity="high",
            source="vehicles",
            proposed_action="stop",
            status="open",
        )
        hook = Webhook(
            id=new_id(),
            url="https://receiver.example.cn/hook",
            events=["decision.recorded"],
            secret="s" * 32,
            region_prefix=TOWN_A,
            active=True,
            created_by=key_ids[("integrator", TOWN_A)],
            created_at=utcnow(),
        )
        session.add_all([warning, hook])
        await session.commit()
        ids = {
            "household": household,
            "recipient": recipient["id"],
            "warning": warning.id,
            "batch": batch.json()["id"],
            "webhook": hook.id,
            "registration": registration.json()["id"],
        }
    yield World(keys, ids, person)
    for client in keys.values():
        await client.aclose()


# A request each endpoint accepts as far as its role and scope checks: bodies valid enough
# that nothing is refused for its shape before the object is looked up.
BODIES: dict[str, Any] = {
    "POST /v1/verifications/{verification_id}/rescore": {},
    "POST /v1/verifications/{verification_id}/decision": {"decision": "approve", "reason": "x"},
    "POST /v1/recipients/{recipient_id}/stop": {"reason": "moved away"},
    "POST /v1/recipients/{recipient_id}/consent": {"document_id": "A-2", "signed_on": "2026-11-01"},
    "POST /v1/warnings/{warning_id}/acknowledge": {"note": "visited"},
    "POST /v1/warnings/{warning_id}/resolve": {"note": "visited"},
    "POST /v1/near-relatives/{registration_id}/revoke": {"reason": "left office"},
    "POST /v1/batches/{batch_id}/households": {"households": []},
    "POST /v1/policy/simulate": {
        "region_code": COUNTY,
        "program": "dibao",
        "area": "urban",
        "overrides": {"monthly_standard": "700"},
    },
    "POST /v1/audit/search": {},
}
OBJECT = {
    "verification_id": "household",
    "recipient_id": "recipient",
    "warning_id": "warning",
    "batch_id": "batch",
    "webhook_id": "webhook",
    "registration_id": "registration",
}


def request_of(row: Row, ids: dict[str, str] | None, person: str = "") -> tuple[str, Any]:
    """The row's path with its objects (None: ids that exist nowhere), and its body."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if ids is None or name not in OBJECT:
            return "no-such-connector" if name == "name" else ABSENT
        return ids[OBJECT[name]]

    path = re.sub(r"\{(\w+)\}", fill, row.path)
    body = BODIES.get(str(row), {} if row.method in ("POST", "PUT") else None)
    if str(row) == "POST /v1/people/search":
        body = {"id_number": person or make_id_number()}
    return path, body


@pytest.mark.parametrize("row", ROWS, ids=str)
async def test_each_role_is_let_through_or_refused_as_the_table_says(
    world: World, row: Row
) -> None:
    """Every role, on objects that exist nowhere (so nothing changes): `·` is 403, ✓ is
    anything but 401/403."""
    path, body = request_of(row, None)
    region = EVERYWHERE if row.scope == "every-region" else ELSEWHERE
    for role in ROLES:
        response = await world.keys[(role, region)].request(row.method, path, json=body)
        if role in row.allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["type"] == "/problems/forbidden"


@pytest.mark.parametrize("row", [row for row in ROWS if set(ROLES) - row.allowed], ids=str)
async def test_a_role_refused_learns_that_before_what_parameters_the_endpoint_takes(
    world: World, row: Row
) -> None:
    """With a query parameter the endpoint does not take, a role it refuses gets its 403,
    not the 422 that lists the parameters; a role it admits gets that 422."""
    path, body = request_of(row, None)
    region = EVERYWHERE if row.scope == "every-region" else ELSEWHERE
    refused = sorted(set(ROLES) - row.allowed)[0]
    admitted = sorted(row.allowed)[0]
    asked = {"params": {"colour": "red"}, "json": body}

    refusal = await world.keys[(refused, region)].request(row.method, path, **asked)
    answer = await world.keys[(admitted, region)].request(row.method, path, **asked)

    assert refusal.status_code == 403, refusal.text
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["loc"] == ["query", "colour"]


@pytest.mark.parametrize("row", [row for row in ROWS if row.scope == "every-region"], ids=str)
async def test_only_a_key_of_every_region_changes_what_every_region_asks(
    world: World, row: Row
) -> None:
    """A connector serves every region: a county's integrator or operator cannot register,
    change, enable, disable, pause or resume one for the whole deployment."""
    path, body = request_of(row, None)
    for role in row.allowed:
        for region in (ELSEWHERE, COUNTY, TOWN_A):
            response = await world.keys[(role, region)].request(row.method, path, json=body)
            assert response.status_code == 403, (role, region, response.text)
            assert "key of every region" in response.json()["detail"]


Check = Callable[[dict[str, Any], dict[str, str]], bool]


def _absent(kind: str) -> Check:
    return lambda answer, ids: ids[kind] not in str(answer)


LISTS: dict[str, Check] = {
    "GET /v1/verifications": _absent("household"),
    "POST /v1/people/search": _absent("household"),
    "POST /v1/policy/simulate": lambda answer, ids: answer["verifications"] == 0,
    "GET /v1/batches": _absent("batch"),
    "GET /v1/recipients": _absent("recipient"),
    "GET /v1/warnings": _absent("warning"),
    "GET /v1/warnings/summary": lambda answer, ids: answer["regions"] == [],
    "GET /v1/near-relatives": _absent("registration"),
    "GET /v1/webhooks": _absent("webhook"),
    # Township B's auditors see their own keys' refused probes of township A's objects
    # (this test makes them): never an event stored with township A's code.
    "GET /v1/audit": lambda answer, ids: TOWN_A not in str(answer),
    "POST /v1/audit/search": lambda answer, ids: TOWN_A not in str(answer),
}
OBJECT_SCOPES = {"household", "recipient", "warning", "batch", "webhook", "registration"}
SCOPED = [
    pytest.param(row, role, id=f"{row}-{role}")
    for row in ROWS
    if row.scope in OBJECT_SCOPES or str(row) in LISTS
    for role in sorted(row.allowed)
]


@pytest.mark.parametrize(("row", "role"), SCOPED)
async def test_a_neighbouring_township_finds_nothing(world: World, row: Row, role: str) -> None:
    """A township B key of a role the row allows: township A's object is 404 (as an id
    that exists nowhere is), a list or count leaves it out; a county key of the same role
    reads what township B cannot."""
    path, body = request_of(row, world.ids, world.person_in_a)
    response = await world.keys[(role, TOWN_B)].request(row.method, path, json=body)
    if row.scope in OBJECT_SCOPES:
        assert response.status_code == 404, response.text
        nowhere_path, _ = request_of(row, None)
        nowhere = await world.keys[(role, TOWN_B)].request(row.method, nowhere_path, json=body)
        assert response.json()["title"] == nowhere.json()["title"]
        assert response.json()["detail"] == nowhere.json()["detail"]
    else:
        assert response.status_code == 200, response.text
        assert LISTS[str(row)](response.json(), world.ids), response.text
    if row.method == "GET" or str(row) in LISTS:
        county = await world.keys[(role, COUNTY)].request(row.method, path, json=body)
        assert county.status_code == 200, county.text
        if str(row) in LISTS and row.scope != "audit-list":
            assert not LISTS[str(row)](county.json(), world.ids), "the county sees it"


@pytest.mark.parametrize("role", ["caseworker", "admin"])
async def test_a_township_key_files_only_in_its_township(world: World, role: str) -> None:
    body = verification_body([member(make_id_number())], township_code=TOWN_A)
    response = await world.keys[(role, TOWN_B)].post("/v1/verifications", json=body)
    assert response.status_code == 403
    assert response.json()["errors"][0]["loc"] == ["body", "township_code"]


@pytest.mark.parametrize("role", ["auditor", "admin"])
async def test_a_township_key_cannot_register_near_relatives(world: World, role: str) -> None:
    """Registrations are kept by the region of a post, a county at the narrowest
    (docs/permissions.md)."""
    response = await world.keys[(role, TOWN_A)].post(
        "/v1/near-relatives",
        json={
            "region_code": COUNTY,
            "staff_name": "王六",
            "staff_position": "村支书",
            "relative_id_number": make_id_number(COUNTY),
            "relative_name": "王七",
            "relationship": "child",
        },
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["loc"] == ["body", "region_code"]
