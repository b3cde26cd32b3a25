"""Attacks a hostile API caller would try, each held by the running service over real HTTP."""

import json
from typing import Any

import httpx
import pytest

from tests.conftest import CLIENT_TLS, ClientFactory, LiveService
from tests.connectors.declarative.specs import example
from tests.factories import make_id_number, member, verification_body


def _spec_on_bare_host(live: LiveService, name: str) -> dict[str, Any]:
    """The tax example with base_url an allowed host and no path: the request path is then
    appended right after the host."""
    spec = example("tax", f"{live.base_url}/sandbox")
    spec["name"] = name
    spec["base_url"] = live.base_url
    spec["request"]["path"] = "/sandbox/tax/income/batch"
    spec["health"]["path"] = "/sandbox/tax/health"
    return spec


@pytest.mark.parametrize(
    "path",
    ["@127.0.0.2:9/income/batch", ".evil.example/income/batch", ":1/income/batch", "x"],
    ids=["userinfo", "subdomain", "port", "relative"],
)
@pytest.mark.parametrize("field", ["request", "health"])
async def test_a_spec_path_cannot_move_the_request_off_the_allowed_host(
    api_client: ClientFactory, live_service: LiveService, field: str, path: str
) -> None:
    """`base_url` + path is text: `http://allowed:80` + `@127.0.0.2:9/` is a request to
    127.0.0.2 with `allowed:80` as userinfo, around the partner allow-list (SSRF)."""
    integrator = await api_client(role="integrator", region="00")
    spec = _spec_on_bare_host(live_service, "ssrf_path")
    spec[field]["path"] = path

    response = await integrator.post("/v1/connectors", json=spec)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["pointer"] for error in response.json()["errors"]] == [f"/{field}/path"]
    assert (await integrator.get("/v1/connectors/ssrf_path")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/../../../v1/verifications",
        "/%2e%2e/%2E%2E/%2e%2e/v1/verifications",
        "/..%5c..%5cv1/verifications",
        "/sandbox\\..\\v1",
    ],
    ids=["dot-segments", "percent-encoded", "encoded backslashes", "backslashes"],
)
@pytest.mark.parametrize("field", ["request", "health"])
async def test_a_spec_path_cannot_climb_out_of_base_url_s_path(
    api_client: ClientFactory, live_service: LiveService, field: str, path: str
) -> None:
    """base_url `…/sandbox/tax` + `/../../../v1/verifications` was the partner host's own
    `/v1/verifications` (hedui's, here), read at the next test read."""
    integrator = await api_client(role="integrator", region="00")
    spec = example("tax", f"{live_service.base_url}/sandbox")
    spec["name"] = "climbing_path"
    spec[field]["path"] = path

    response = await integrator.post("/v1/connectors", json=spec)

    assert response.status_code == 422, response.text
    assert [error["pointer"] for error in response.json()["errors"]] == [f"/{field}/path"]
    assert "no dot-segment" in response.json()["errors"][0]["msg"]
    assert (await integrator.get("/v1/connectors/climbing_path")).status_code == 404


@pytest.mark.parametrize(
    "expression",
    ["(" * 490 + "results" + ")" * 490, "!" * 998 + "a", "[" * 330 + "people" + "]" * 330],
    ids=["parentheses", "negations", "brackets"],
)
async def test_an_expression_nested_hundreds_deep_is_422_not_a_crash(
    api_client: ClientFactory, live_service: LiveService, expression: str
) -> None:
    """jmespath parses recursively: hundreds of levels exhausted the stack (a 500, and the
    connection dropped). Refused by its depth, nothing stored, the connection still good."""
    integrator = await api_client(role="integrator", region="00")
    spec = _spec_on_bare_host(live_service, "deep_expression")
    spec["response"]["records"] = expression

    response = await integrator.post("/v1/connectors", json=spec)

    assert response.status_code == 422, response.text
    assert [error["pointer"] for error in response.json()["errors"]] == ["/response/records"]
    assert (await integrator.get("/v1/connectors/deep_expression")).status_code == 404


async def test_an_expression_that_multiplies_what_it_reads_is_422(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    """`results[].[@,@,…20…][]` seven times over: 29 deep (within the depth limit), and
    20**7 copies of every item a partner sends. Refused at registration, nothing stored."""
    integrator = await api_client(role="integrator", region="00")
    spec = _spec_on_bare_host(live_service, "copying_expression")
    spec["response"]["records"] = "results" + ("[].[" + ",".join(["@"] * 20) + "][]") * 7

    response = await integrator.post("/v1/connectors", json=spec)

    assert response.status_code == 422, response.text
    assert [error["pointer"] for error in response.json()["errors"]] == ["/response/records"]
    assert "more than 1000 values" in response.json()["errors"][0]["msg"]
    assert (await integrator.get("/v1/connectors/copying_expression")).status_code == 404


def _with_raw(spec: dict[str, Any], where: str, member: str) -> str:
    """The spec as JSON text, with `member` (raw JSON text) added first to the object at
    `where`: escapes and constants a JSON encoder would never write."""
    text = json.dumps(spec, ensure_ascii=False)
    target: Any = spec
    for part in where.strip("/").split("/"):
        target = target[part]
    old = json.dumps(target, ensure_ascii=False)
    assert text.count(old) == 1
    return text.replace(old, "{" + member + ", " + old[1:], 1)


@pytest.mark.parametrize(
    ("where", "member", "pointer"),
    [
        ("/request/body/template", '"x": "a\\ud800"', "/request/body/template/x"),
        ("/request/body/template", '"\\ud800": "a"', "/request/body/template/\ufffd"),
        ("/request", '"headers": {"\\ud800": "v"}', "/request/headers/\ufffd"),
        ("/request", '"query": {"\\ud800": "v"}', "/request/query/\ufffd"),
        ("/response/fields", '"\\ud800": {"expr": "x"}', "/response/fields/\ufffd"),
        ("/request/body/template", '"x": NaN', "/request/body/template/x"),
        ("/request/body/template", '"x": [Infinity]', "/request/body/template/x/0"),
        ("/request/body/template", '"x": -1e400', "/request/body/template/x"),
        ("/request/body/template", '"x": "a\\u0000"', "/request/body/template/x"),
        ("/request/body/template", '"\\u0000": "a"', "/request/body/template/\ufffd"),
    ],
    ids=[
        "surrogate in template value",
        "surrogate in template key",
        "surrogate in header name",
        "surrogate in query name",
        "surrogate in field name",
        "NaN",
        "Infinity",
        "1e400",
        "NUL in template value",
        "NUL in template key",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_spec_text_that_cannot_be_stored_or_sent_as_is_is_422(
    api_client: ClientFactory,
    live_service: LiveService,
    method: str,
    where: str,
    member: str,
    pointer: str,
) -> None:
    """A lone surrogate was a 500 with the connection dropped (or stored as U+FFFD and sent
    to the partner), NaN, Infinity and 1e400 were stored as null, a NUL was stored on both
    databases: each a 422 naming the field, nothing stored, the connection still good."""
    integrator = await api_client(role="integrator", region="00")
    name = f"raw_{method.lower()}"
    if method == "PUT":
        created = await integrator.post(
            "/v1/connectors", json=_spec_on_bare_host(live_service, name)
        )
        assert created.status_code in (201, 409), created.text
    spec = _spec_on_bare_host(live_service, name)
    spec["title"] = "first"
    text = _with_raw(spec, where, member)

    response = await integrator.request(
        method,
        "/v1/connectors" if method == "POST" else f"/v1/connectors/{name}",
        content=text.encode(),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer]
    stored = await integrator.get(f"/v1/connectors/{name}")
    if method == "POST":
        assert stored.status_code == 404
    else:
        assert stored.json()["spec"]["title"] != "first"


async def test_a_json_body_template_nested_hundreds_deep_is_422(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    """Templates are checked, compiled and rendered recursively: bounded at 16 levels."""
    integrator = await api_client(role="integrator", region="00")
    spec = _spec_on_bare_host(live_service, "deep_template")
    text = _with_raw(spec, "/request/body/template", '"x": ' + '{"a": ' * 900 + "1" + "}" * 900)

    response = await integrator.post(
        "/v1/connectors", content=text.encode(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {
            "loc": ["body", "request", "body", "template"],
            "msg": "nested more than 16 deep",
            "pointer": "/request/body/template",
        }
    ]


async def test_a_spec_path_below_the_allowed_host_is_accepted(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    integrator = await api_client(role="integrator", region="00")

    response = await integrator.post(
        "/v1/connectors", json=_spec_on_bare_host(live_service, "bare_host_tax")
    )

    assert response.status_code == 201, response.text


async def test_an_id_number_sent_as_request_id_is_not_echoed_logged_or_audited(
    api_client: ClientFactory, http: httpx.AsyncClient
) -> None:
    """A caller that correlates by ID number must not put it in every log line, response
    header and audit record of the request: the service makes up an id instead."""
    person = make_id_number("530104")
    caseworker = await api_client(role="caseworker", region="53")

    for sent in (person, f"case-{person}", person[:15]):
        answer = await http.get("/healthz", headers={"X-Request-ID": sent})
        assert person[:15] not in answer.headers["x-request-id"]
        assert len(answer.headers["x-request-id"]) == 32
    created = await caseworker.post(
        "/v1/verifications",
        json=verification_body([member(person)], region_code="530104"),
        headers={"X-Request-ID": f"case-{person}"},
    )
    assert created.status_code in (200, 202), created.text
    assert person not in created.headers["x-request-id"]

    auditor = await api_client(role="auditor", region="53")
    events = await auditor.post("/v1/audit/search", json={"id_number": person})
    assert events.status_code == 200, events.text
    assert events.json()["items"], "the submission is audited"
    assert person[:15] not in events.text


@pytest.mark.parametrize("order", ["admin first", "caseworker first"])
async def test_two_authorization_headers_are_401_whatever_their_order(
    live_service: LiveService, api_client: ClientFactory, order: str
) -> None:
    """A proxy may read the first header and the app the last: a request carrying two
    credentials is nobody's, whichever comes first and even when both are valid."""
    admin = await api_client(role="admin", region="00")
    caseworker = await api_client(role="caseworker", region="53")
    tokens = [admin.headers["Authorization"], caseworker.headers["Authorization"]]
    if order != "admin first":
        tokens.reverse()
    async with httpx.AsyncClient(base_url=live_service.base_url, verify=CLIENT_TLS) as anyone:
        response = await anyone.get(
            "/v1/apikeys", headers=[("Authorization", token) for token in tokens]
        )
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "Send one Authorization header, not several"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def _visible_ids(client: httpx.AsyncClient) -> set[str]:
    page = await client.get("/v1/verifications", params={"limit": 200})
    return {item["id"] for item in page.json()["items"]}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"reference": "a", "program": "dibao", "program": "tekun"}', "'program'"),
        ('{"members": [{"name": "张三", "name": "李四"}]}', "'name'"),
        ('{"members": [{"张三丰": 1, "张三丰": 2}]}', "'张**'"),
    ],
    ids=["top level", "nested", "a person's name"],
)
async def test_a_member_named_twice_in_a_body_is_422(
    api_client: ClientFactory, body: str, named: str
) -> None:
    """Python keeps the last of two members with one name, a proxy or an audit layer may
    read the first: `{"decision": "reject", ..., "decision": "approve"}` must not be an
    approval to one and a refusal to the other."""
    caseworker = await api_client()
    before = await _visible_ids(caseworker)
    response = await caseworker.post(
        "/v1/verifications", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"loc": ["body"], "msg": f"a member named twice: {named}"}]
    assert await _visible_ids(caseworker) == before


async def test_a_decision_naming_its_decision_twice_is_not_recorded(
    api_client: ClientFactory,
) -> None:
    approver = await api_client(role="approver")
    response = await approver.post(
        "/v1/verifications/no-such-verification/decision",
        content='{"decision": "reject", "reason": "not eligible", "decision": "approve"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "body: a member named twice: 'decision'"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"force": "yes"}, "force"), ({"force": 1}, "force"), ({"version": True}, "version")],
)
async def test_enabling_takes_a_boolean_and_a_number_as_such(
    api_client: ClientFactory, body: dict[str, Any], field: str
) -> None:
    """`"yes"` and `1` are not `true` (nor `true` version 1) where forcing an untested
    version into use is at stake."""
    integrator = await api_client(role="integrator", region="00")
    response = await integrator.post("/v1/connectors/tax/enable", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", field]


async def test_a_care_grade_of_true_is_not_grade_1(api_client: ClientFactory) -> None:
    caseworker = await api_client()
    body = verification_body(
        [member(make_id_number("530102"))], program="tekun", reference="care-grade-true"
    )
    body.update(support_mode="concentrated", care_grade=True)
    response = await caseworker.post("/v1/verifications", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "care_grade"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/people/search", {"id_number": "11010519491231002X", "limit": True}, "limit"),
        ("/v1/audit/search", {"limit": True}, "limit"),
    ],
    ids=["people", "audit"],
)
async def test_a_boolean_is_not_a_number(
    api_client: ClientFactory, path: str, body: dict[str, Any], field: str
) -> None:
    """JSON's true equals 1 to Python: `"limit": true` was a page of one."""
    auditor = await api_client(role="auditor", region="53")
    response = await auditor.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert response.json()["errors"][0]["msg"] == "a number, not a boolean"


@pytest.mark.parametrize("moment", ["1733443200", "-1"])
async def test_a_moment_in_seconds_since_1970_is_422(
    api_client: ClientFactory, moment: str
) -> None:
    caseworker = await api_client()
    response = await caseworker.get("/v1/verifications", params={"created_from": moment})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "created_from"]


@pytest.mark.parametrize(
    ("method", "path", "sent_in"),
    [
        ("POST", "/v1/people/search", "body"),
        ("POST", "/v1/audit/search", "body"),
        ("GET", "/v1/audit", "query"),
        ("GET", "/v1/verifications", "query"),
    ],
)
async def test_a_forged_cursor_is_named_where_it_was_sent(
    api_client: ClientFactory, method: str, path: str, sent_in: str
) -> None:
    auditor = await api_client(role="auditor", region="53")
    if method == "POST":
        body = {"cursor": "forged"}
        if path == "/v1/people/search":
            body["id_number"] = "11010519491231002X"
        response = await auditor.post(path, json=body)
    else:
        response = await auditor.get(path, params={"cursor": "forged"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == [sent_in, "cursor"]


@pytest.mark.parametrize("path", ["/healthz/", "/dashboard/", "/v1/verifications/"])
async def test_a_trailing_slash_is_not_found_not_redirected_to_the_callers_host(
    api_client: ClientFactory, path: str
) -> None:
    """A redirect to the same path without its slash named the Host the caller sent: any
    host, an open redirect (and a poisoned entry behind a cache). Such a path is not found."""
    caseworker = await api_client(role="caseworker", region="53")
    response = await caseworker.get(path, headers={"Host": "evil.example.com"})
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"] == "application/problem+json"
    assert "evil.example.com" not in response.text
