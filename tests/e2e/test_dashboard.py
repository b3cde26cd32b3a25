"""The operators' dashboard over HTTP: signing in, the data it polls, actions from it."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import CLIENT_TLS, ClientFactory, LiveService


async def token_for(api_client: ClientFactory, role: str) -> str:
    client = await api_client(role=role, region="00")
    return client.headers["Authorization"].split(" ", 1)[1]


@pytest.fixture
async def browser(live_service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, as a browser does (the service runs on plain HTTP here,
    so the Secure cookie is carried over by hand below)."""
    async with httpx.AsyncClient(
        base_url=live_service.base_url, timeout=30, verify=CLIENT_TLS
    ) as client:
        yield client


async def sign_in(browser: httpx.AsyncClient, key: str) -> httpx.Response:
    response = await browser.post(
        "/dashboard/login",
        content=f"key={key}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    if "set-cookie" in response.headers:
        token = response.cookies.get("hedui_session")
        assert token
        browser.headers["Cookie"] = f"hedui_session={token}"
    return response


async def test_without_a_session_the_page_is_a_sign_in_form(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/dashboard")
    assert response.status_code == 200
    assert '<form class="login"' in response.text
    assert (await browser.get("/dashboard/data")).status_code == 401


async def test_over_plain_http_from_another_host_the_sign_in_page_says_the_cookie_wont_stick(
    browser: httpx.AsyncClient, live_service: LiveService
) -> None:
    """Browsers keep a Secure cookie over plain HTTP for the loopback alone (localhost,
    127.0.0.1, [::1]): reached at another address or a host name, the page says so before
    anyone signs in and loops."""
    port = live_service.base_url.rsplit(":", 1)[1]
    page = await browser.get("/dashboard", headers={"Host": f"192.0.2.2:{port}"})
    assert 'id="insecure"' in page.text
    assert "HTTPS" in page.text
    assert "HEDUI_DASHBOARD_SECURE_COOKIE=off" in page.text
    for loopback in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        local = await browser.get("/dashboard", headers={"Host": loopback})
        assert local.status_code == 200
        assert 'id="insecure"' not in local.text, loopback
    forwarded = await browser.get(
        "/dashboard", headers={"Host": f"hedui.example:{port}", "X-Forwarded-Proto": "http"}
    )
    assert 'id="insecure"' in forwarded.text


async def test_signing_in_sets_a_secure_http_only_session_cookie(
    browser: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    key = await token_for(api_client, "operator")
    response = await sign_in(browser, key)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/dashboard"):
        assert flag in cookie
    assert key.lower() not in cookie  # the cookie carries a session token, not the key

    page = await browser.get("/dashboard")
    assert 'id="grid"' in page.text
    assert 'data-may-pause="yes"' in page.text
    assert 'id="no-pause"' not in page.text
    data = (await browser.get("/dashboard/data")).json()
    names = {item["summary"]["name"] for item in data["connectors"]}
    assert names == {
        "vehicles",
        "pensions",
        "housing_fund",
        "real_estate",
        "public_payroll",
        "bank",
    }
    assert {"hour", "day"} <= set(data["connectors"][0]["history"])

    logout = await browser.post("/dashboard/logout")
    assert 'hedui_session=""' in logout.headers["set-cookie"]
    # The session is gone on the server too: the old cookie opens nothing.
    assert (await browser.get("/dashboard/data")).status_code == 401


@pytest.mark.parametrize("role", ["caseworker", "integrator"])
async def test_other_roles_cannot_sign_in(
    browser: httpx.AsyncClient, api_client: ClientFactory, role: str
) -> None:
    response = await sign_in(browser, await token_for(api_client, role))
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.local:8000"},
    ],
)
async def test_a_sign_in_posted_from_another_site_is_refused(
    browser: httpx.AsyncClient, api_client: ClientFactory, headers: dict[str, str]
) -> None:
    """Login CSRF: another site's page posting its own key would sign the browser in as
    that site's operator."""
    key = await token_for(api_client, "operator")
    response = await browser.post(
        "/dashboard/login",
        content=f"key={key}",
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    own = browser.base_url.netloc.decode()
    same = await browser.post(
        "/dashboard/login",
        content=f"key={key}",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "Origin": f"http://{own}",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert same.status_code == 303  # the dashboard's own form, as a browser sends it


async def test_a_wrong_key_is_refused(browser: httpx.AsyncClient) -> None:
    response = await sign_in(browser, "hd_not-a-key")
    assert response.status_code == 401
    assert "unknown or revoked" in response.text


async def test_scripts_use_the_key_as_a_bearer_token(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    key = await token_for(api_client, "admin")
    response = await http.get("/dashboard/data", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    page = await http.get("/dashboard", headers={"Authorization": f"Bearer {key}"})
    assert 'id="grid"' in page.text
    script = await http.get("/dashboard/static/dashboard.js")
    assert script.status_code == 200
    assert "refresh" in script.text


async def test_an_unknown_query_parameter_is_422_as_on_the_api(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    key = await token_for(api_client, "operator")
    bearer = {"Authorization": f"Bearer {key}"}
    response = await http.get("/dashboard/data", params={"x": "1"}, headers=bearer)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["query", "x"]
    paused = await http.post(
        "/dashboard/connectors/real_estate/pause", params={"x": "1"}, json={"reason": "no"}
    )
    assert paused.status_code == 422, paused.text
    # The page itself takes what a link adds.
    assert (await http.get("/dashboard", params={"utm_source": "mail"})).status_code == 200


async def test_actions_from_the_page_must_be_json(
    browser: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    await sign_in(browser, await token_for(api_client, "operator"))
    form = await browser.post(
        "/dashboard/connectors/real_estate/pause",
        content="reason=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 422  # what a cross-site form could send is refused
    paused = await browser.post("/dashboard/connectors/real_estate/pause", json={"reason": "test"})
    assert paused.status_code == 200
    assert paused.json()["paused"]["reason"] == "test"
    resumed = await browser.post(
        "/dashboard/connectors/real_estate/resume", json={"reason": "test over"}
    )
    assert resumed.json()["paused"] is None
    # A pause says why; a resume may, as on the API and the command line.
    assert (
        await browser.post("/dashboard/connectors/real_estate/pause", json={})
    ).status_code == 422
    assert (
        await browser.post("/dashboard/connectors/real_estate/pause", json={"reason": "again"})
    ).status_code == 200
    unexplained = await browser.post("/dashboard/connectors/real_estate/resume", json={})
    assert unexplained.status_code == 200, unexplained.text
    assert unexplained.json()["paused"] is None


async def test_a_county_operator_watches_but_cannot_pause_a_partner_for_everyone(
    browser: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    county = await api_client(
        role="operator", region="530102", name="operator, region 530102, created by root"
    )
    await sign_in(browser, county.headers["Authorization"].split(" ", 1)[1])
    assert (await browser.get("/dashboard/data")).status_code == 200
    page = await browser.get("/dashboard")
    assert 'data-may-pause="no"' in page.text  # the cards show no pause button
    assert 'id="no-pause"' in page.text  # and the page says why, and what would
    assert "covers region 530102 only" in page.text
    assert "--region 00" in page.text
    # The name `hedui apikey create` gives says the role already: not said twice.
    assert '<div class="who">operator, region 530102, created by root</div>' in page.text
    for action in ("pause", "resume"):
        refused = await browser.post(
            f"/dashboard/connectors/real_estate/{action}", json={"reason": "test"}
        )
        assert refused.status_code == 403, refused.text
        assert "key of every region" in refused.json()["detail"]
    data = (await browser.get("/dashboard/data")).json()
    [estate] = [i for i in data["connectors"] if i["summary"]["name"] == "real_estate"]
    assert estate["summary"]["paused"] is None


async def test_two_authorization_headers_are_refused(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """As on /v1: whichever came first, a request with two credentials is nobody's."""
    operator = await token_for(api_client, "operator")
    caseworker = await token_for(api_client, "caseworker")
    for first, second in ((operator, caseworker), (caseworker, operator)):
        response = await http.get(
            "/dashboard/data",
            headers=[("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")],
        )
        assert response.status_code == 401, response.text
        assert response.json()["detail"] == "Send one Authorization header, not several"


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        ('{"reason": "a", "reason": "b"}', ["body"], "a member named twice: 'reason'"),
        ('{"reason": "a", "colour": 1}', ["body", "colour"], "Extra inputs are not permitted"),
        ('{"reason": ""}', ["body", "reason"], None),
        ("{", ["body"], "not valid JSON"),
        ('{"reason": ' + "[" * 100_000 + "]" * 100_000 + "}", ["body"], "JSON nested too deeply"),
        ('{"reason": 1' + "0" * 5000 + "}", ["body"], "not valid JSON"),
    ],
    ids=["duplicate", "stray field", "blank", "not json", "nested deep", "a huge number"],
)
async def test_a_pause_from_the_page_names_what_is_wrong(
    browser: httpx.AsyncClient,
    api_client: ClientFactory,
    body: str,
    loc: list[str],
    msg: str | None,
) -> None:
    await sign_in(browser, await token_for(api_client, "operator"))
    response = await browser.post(
        "/dashboard/connectors/public_payroll/pause",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["loc"] == loc
    if msg is not None:
        assert error["msg"] == msg
    health = await browser.get("/dashboard/data")
    [payroll] = [
        c["summary"]
        for c in health.json()["connectors"]
        if c["summary"]["name"] == "public_payroll"
    ]
    assert payroll["paused"] is None


async def test_an_empty_or_unknown_key_is_told_apart(browser: httpx.AsyncClient) -> None:
    empty = await sign_in(browser, "  ")
    assert empty.status_code == 422
    assert "Paste an API key" in empty.text
    unknown = await sign_in(browser, "not-a-key")
    assert unknown.status_code == 401
    assert "unknown or revoked" in unknown.text


async def test_a_connector_paused_then_disabled_is_named_on_the_page_with_its_pause(
    browser: httpx.AsyncClient, api_client: ClientFactory, live_service: LiveService
) -> None:
    """No card (it is not enabled), but its pause holds: enabled again it refuses every
    call until resumed, so the page says it is held."""
    import uuid

    from tests.connectors.declarative.specs import example

    integrator = await api_client(role="integrator", region="00")
    operator = await api_client(role="operator", region="00")
    name = f"held_{uuid.uuid4().hex[:8]}"
    spec = example("tax", f"{live_service.base_url}/sandbox") | {"name": name}
    assert (await integrator.post("/v1/connectors", json=spec)).status_code == 201
    enabled = await integrator.post(f"/v1/connectors/{name}/enable", json={"force": True})
    assert enabled.status_code == 200, enabled.text
    for _ in range(400):  # in force once this process has refreshed its connectors
        paused = await operator.post(f"/v1/connectors/{name}/pause", json={"reason": "tax outage"})
        if paused.status_code != 409:
            break
        await asyncio.sleep(0.025)
    assert paused.status_code == 200, paused.text
    assert (await integrator.post(f"/v1/connectors/{name}/disable")).status_code == 200

    await sign_in(browser, await token_for(api_client, "operator"))
    for _ in range(400):  # out of force once this process has refreshed its connectors
        data = (await browser.get("/dashboard/data")).json()
        if name not in [item["summary"]["name"] for item in data["connectors"]]:
            break
        await asyncio.sleep(0.025)

    assert name not in [item["summary"]["name"] for item in data["connectors"]]
    [held] = [item for item in data["paused_disabled"] if item["name"] == name]
    assert held["paused"]["reason"] == "tax outage"
