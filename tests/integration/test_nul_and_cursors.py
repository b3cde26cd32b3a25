"""Text PostgreSQL cannot store, and cursors the service never issued, are 422 on both.

A NUL character in a reference, a name, a consent document id, a query parameter or a path
id was a 500 on PostgreSQL (and stored on SQLite); a cursor holding a naive timestamp was a
500 on both.
"""

import base64
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import text

from service.db import create_engine
from service.error_handlers import install_error_handlers
from tests.conftest import CLIENT_TLS, ClientFactory
from tests.factories import make_id_number, member, verification_body
from tests.integration.test_request_limits import serving_app

NUL = "\x00"


def body(**changes: Any) -> dict[str, Any]:
    created = verification_body([member(make_id_number("530103"))], region_code="530103")
    return {**created, **changes}


def cursor(*parts: object) -> str:
    raw = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"reference": f"case{NUL}1"}, ["body", "reference"]),
        (
            {"consent": {"document_id": f"AUTH{NUL}", "signed_on": "2026-11-01"}},
            ["body", "consent", "document_id"],
        ),
        (
            {"members": [member(make_id_number("530103"), f"张{NUL}三")]},
            ["body", "members", 0, "name"],
        ),
    ],
    ids=["reference", "consent", "name"],
)
async def test_nul_in_a_verification_body_is_422_naming_the_field(
    api_client: ClientFactory, change: dict[str, Any], loc: list[str | int]
) -> None:
    caseworker = await api_client()
    response = await caseworker.post("/v1/verifications", json=body(**change))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc
    assert "NUL" in response.json()["errors"][0]["msg"]


async def test_nul_in_a_near_relative_registration_is_422(api_client: ClientFactory) -> None:
    auditor = await api_client(role="auditor", region="53")
    response = await auditor.post(
        "/v1/near-relatives",
        json={
            "region_code": "530102",
            "staff_name": "李建国",
            "staff_position": f"村委会{NUL}主任",
            "relative_id_number": make_id_number("530102"),
            "relative_name": "张三丰",
            "relationship": "spouse",
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "staff_position"]


async def test_nul_in_a_decision_reason_is_422(api_client: ClientFactory) -> None:
    approver = await api_client(role="approver")
    response = await approver.post(
        "/v1/verifications/00000000-0000-0000-0000-000000000000/decision",
        json={"decision": "approve", "reason": f"ok{NUL}"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "reason"]


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/v1/verifications", {"reference": f"case{NUL}"}, ["query", "reference"]),
        ("/v1/near-relatives", {"cursor": f"abc{NUL}"}, ["query", "cursor"]),
        ("/v1/verifications/abc%00def", {}, ["path"]),
        ("/v1/verifications/abc%00/report", {}, ["path"]),
    ],
    ids=["query", "cursor-param", "path-id", "path-report"],
)
async def test_nul_in_a_query_or_path_is_422(
    api_client: ClientFactory, path: str, params: dict[str, str], loc: list[str]
) -> None:
    admin = await api_client(role="admin", region="00")
    response = await admin.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("reference=%ED%A0%80", ["query", "reference"]),
        ("limit=10&reference=case-%FF", ["query", "reference"]),
        ("%C3=1", ["query", "\ufffd"]),
    ],
    ids=["encoded-surrogate", "invalid-byte", "name"],
)
async def test_a_query_that_is_not_utf8_is_422(
    api_client: ClientFactory, query: str, loc: list[str]
) -> None:
    """Not read with replacement characters (and stored so, by the operations that keep a
    query value): refused before the app reads it."""
    admin = await api_client(role="admin", region="00")
    response = await admin.get(f"/v1/verifications?{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == loc


@pytest.mark.parametrize(
    "bad",
    [
        cursor("2026-11-20T10:00:00", "00000000-0000-0000-0000-000000000000"),
        cursor("2026-11-20T10:00:00+00:00", f"abc{NUL}"),
        cursor("2026-11-20T10:00:00+00:00", 12),
        cursor("2026-11-20T10:00:00+00:00"),
        cursor(["2026"], "x"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
    ids=["naive-datetime", "nul-id", "number-id", "one-part", "list-datetime", "not-utf8"],
)
@pytest.mark.parametrize("path", ["/v1/verifications", "/v1/near-relatives"])
async def test_a_cursor_the_service_never_issued_is_422(
    api_client: ClientFactory, path: str, bad: str
) -> None:
    admin = await api_client(role="admin", region="00")
    response = await admin.get(path, params={"cursor": bad})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_a_cursor_pages_only_the_list_and_filters_it_came_from(
    api_client: ClientFactory,
) -> None:
    """A cursor mixed up with another list's, or kept after the filters changed, is 422:
    taken as a position elsewhere it would start a list at a point it never had."""
    caseworker = await api_client(region="530103")
    for _ in range(2):
        assert (await caseworker.post("/v1/verifications", json=body())).status_code == 202
    first = await caseworker.get("/v1/verifications", params={"limit": 1})
    issued = first.json()["next_cursor"]
    assert issued is not None

    on = await caseworker.get("/v1/verifications", params={"limit": 5, "cursor": issued})
    assert on.status_code == 200, on.text
    for path, params in (
        ("/v1/batches", {}),
        ("/v1/recipients", {}),
        ("/v1/warnings", {}),
        ("/v1/verifications", {"status": "completed"}),
    ):
        refused = await caseworker.get(path, params={**params, "cursor": issued})
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json()["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.postgres_only
async def test_text_postgresql_cannot_store_is_422_even_past_the_models(
    database_url: str,
) -> None:
    """The net under any field a request model does not cover: the database's refusal of a
    NUL character is the caller's 422, not a 500."""
    engine = create_engine(database_url)
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/store")
    async def store(request: Request) -> dict[str, str]:
        async with engine.connect() as connection:
            await connection.execute(
                text("SELECT CAST(:v AS text)"), {"v": (await request.json())["v"]}
            )
        return {"stored": "yes"}

    try:
        async with (
            serving_app(app) as base_url,
            httpx.AsyncClient(base_url=base_url, verify=CLIENT_TLS) as client,
        ):
            refused = await client.post("/store", json={"v": f"a{NUL}b"})
            stored = await client.post("/store", json={"v": "ab"})
    finally:
        await engine.dispose()
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"loc": ["body"], "msg": "must not contain a NUL character"}
    ]
    assert stored.status_code == 200


async def test_nul_in_an_operators_pause_reason_is_422(api_client: ClientFactory) -> None:
    operator = await api_client(role="operator", region="00")
    response = await operator.post("/v1/connectors/bank/pause", json={"reason": f"down{NUL}"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "reason"]
