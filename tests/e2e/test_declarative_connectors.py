"""Registering a declarative connector over the API and using it, against the sandbox."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from service.models.declarative_connector import StoredConnectorVersion
from tests.conftest import (
    CLIENT_TLS,
    ClientFactory,
    LiveService,
    running_service,
    service_settings,
    serving,
)
from tests.connectors.declarative.specs import example
from tests.e2e.hostile import Answer, HostilePartner
from tests.factories import make_id_number, member, verification_body
from tests.stored import api_tokens

TAX_SECRET_ENV = "HEDUI_SECRET_TEST_E2E_TAX_KEY"


async def _until(check: Callable[[], Awaitable[bool]], *, attempts: int = 100) -> None:
    """Poll `check` until it holds (processes refresh their connectors every 0.2 s here)."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition never held")


def _tax_spec(live: LiveService, **changes: Any) -> dict[str, Any]:
    spec = example("tax", f"{live.base_url}/sandbox")
    spec.update(changes)
    return spec


async def _verification(client: httpx.AsyncClient, id_number: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/verifications",
        json=verification_body([member(id_number)]),
        headers={"Prefer": "wait=20"},
    )
    assert response.status_code in (200, 202), response.text
    body: dict[str, Any] = response.json()
    return body


async def test_register_test_read_enable_and_use(
    http: httpx.AsyncClient, api_client: ClientFactory, live_service: LiveService
) -> None:
    integrator = await api_client(role="integrator", region="00")
    caseworker = await api_client(role="caseworker", region="53")
    taxed = make_id_number()
    await http.post(
        "/sandbox/people",
        json={"id_number": taxed, "tax": {"year": 2025, "annual_taxable_income": "96000.00"}},
    )

    created = await integrator.post("/v1/connectors", json=_tax_spec(live_service))
    assert created.status_code == 201, created.text
    assert (created.json()["latest_version"], created.json()["enabled"]) == (1, False)

    refused = await integrator.post("/v1/connectors/tax/enable", json={})
    assert refused.status_code == 409

    tested = await integrator.post(
        "/v1/connectors/tax/test",
        json={"region_code": "530102", "members": [{"id_number": taxed, "name": "张三"}]},
    )
    assert tested.status_code == 200, tested.text
    result = tested.json()
    assert result["ok"] is True, result
    assert result["records"] == [
        {
            "kind": "taxed_income",
            "id_number": taxed[:6] + "********" + taxed[-4:],
            "year": 2025,
            "annual_amount": "96000.00",
        }
    ]
    assert result["exchanges"][0]["status"] == 200
    assert "9600000" in result["exchanges"][0]["response_body"]  # fen, as the partner sent
    assert taxed not in tested.text

    enabled = await integrator.post("/v1/connectors/tax/enable", json={})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active_version"] == 1

    try:

        async def uses_tax() -> bool:
            verification = await _verification(caseworker, taxed)
            return "tax" in {source["source"] for source in verification["sources"]}

        await _until(uses_tax)
        verification = await _verification(caseworker, taxed)
        report = (await caseworker.get(f"/v1/verifications/{verification['id']}/report")).json()
        (tax,) = [source for source in report["sources"] if source["source"] == "tax"]
        assert (tax["status"], tax["connector_version"]) == ("ok", "1")
        (finding,) = [f for f in report["findings"] if f["code"] == "taxed_income_over_standard"]
        assert finding["evidence"][0]["source"] == "tax"
        assert "annual_amount=96000.00" in finding["evidence"][0]["fact"]
        assert report["recommendation"] == "review"

        # A new version is stored, but version 1 stays in force until v2 is enabled.
        changed = await integrator.put(
            "/v1/connectors/tax", json=_tax_spec(live_service, title="个税 v2")
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["latest_version"], changed.json()["active_version"]) == (2, 1)
        forced = await integrator.post("/v1/connectors/tax/enable", json={"force": True})
        assert forced.json()["active_version"] == 2

        async def on_version_2() -> bool:
            verification = await _verification(caseworker, taxed)
            report = await caseworker.get(f"/v1/verifications/{verification['id']}/report")
            versions = {s["source"]: s["connector_version"] for s in report.json()["sources"]}
            return versions.get("tax") == "2"

        await _until(on_version_2)
        # The earlier report still names the version that produced its facts.
        again = (await caseworker.get(f"/v1/verifications/{verification['id']}/report")).json()
        assert [s["connector_version"] for s in again["sources"] if s["source"] == "tax"] == ["1"]
    finally:
        disabled = await integrator.post("/v1/connectors/tax/disable")
        assert disabled.status_code == 200

        async def tax_gone() -> bool:
            verification = await _verification(caseworker, make_id_number())
            return "tax" not in {source["source"] for source in verification["sources"]}

        await _until(tax_gone)
        # Disabled, it is still registered: its history can be read.
        history = await integrator.get("/v1/connectors/tax/events")
        assert history.status_code == 200, history.text
        assert isinstance(history.json()["items"], list)
        unknown = await integrator.get("/v1/connectors/never_registered/events")
        assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"response": {"fields": {"annual_amount": {"expr": "x", "surprise": 1}}}}, None),
        (None, "/response/fields/annual_amount/expr"),
        ({"base_url": "http://169.254.169.254/tax"}, "/base_url"),
        (
            {"auth": {"type": "bearer", "token": {"env": "HEDUI_SECRET_TEST_UNSET"}}},
            "/auth/token/env",
        ),
        (
            {
                "request": {
                    "method": "POST",
                    "path": "/income/batch",
                    "body": {
                        "type": "xml",
                        "template": '<!DOCTYPE q [<!ENTITY e "x">]><q>&e;{members}</q>',
                        "member_template": "<sfzh>{id_number}</sfzh>",
                    },
                }
            },
            "/request/body/template",
        ),
        (
            {
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": "http://10.0.0.1/token",
                    "client_id": {"env": TAX_SECRET_ENV},
                    "client_secret": {"env": TAX_SECRET_ENV},
                }
            },
            "/auth/token_url",
        ),
        (
            {
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": "http://127.0.0.1/token",
                    "client_id": {"env": TAX_SECRET_ENV},
                    "client_secret": {"file": "/nonexistent/hedui-test-secret"},
                }
            },
            "/auth/client_secret/file",
        ),
        (
            {"errors": [{"status": [503], "when": "retCode ==", "action": "retry"}]},
            "/errors/0/when",
        ),
        ({"errors": [{"status": [503], "action": "ignore"}]}, "/errors/0/action"),
        ({"limits": {"rate_per_s": 0}}, "/limits/rate_per_s"),
    ],
    ids=[
        "unknown field",
        "jmespath syntax",
        "host outside allow-list",
        "missing secret",
        "xml with entities",
        "token url outside allow-list",
        "missing secret file",
        "error rule jmespath",
        "error rule action",
        "rate limit",
    ],
)
async def test_bad_specs_are_422_with_the_pointer_and_store_nothing(
    api_client: ClientFactory,
    live_service: LiveService,
    change: dict[str, Any] | None,
    pointer: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TAX_SECRET_ENV, "sandbox-key")
    integrator = await api_client(role="integrator", region="00")
    spec = _tax_spec(live_service, name="bad_tax")
    if change is None:
        spec["response"]["fields"]["annual_amount"]["expr"] = "taxableIncome[?"
    elif "response" in change:
        spec["response"]["fields"]["annual_amount"]["surprise"] = 1
        pointer = "/response/fields/annual_amount/surprise"
    else:
        spec.update(change)

    response = await integrator.post("/v1/connectors", json=spec)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer]
    assert (await integrator.get("/v1/connectors/bad_tax")).status_code == 404


async def test_only_integrators_register(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    caseworker = await api_client(role="caseworker")
    operator = await api_client(role="operator", region="00")

    assert (
        await caseworker.post("/v1/connectors", json=_tax_spec(live_service))
    ).status_code == 403
    assert (await operator.post("/v1/connectors", json=_tax_spec(live_service))).status_code == 403
    schema = await operator.get("/v1/connectors/schema")
    assert schema.status_code == 200
    assert "response" in schema.json()["properties"]
    # What each record kind's fields are, so a spec can be written without a 422 to learn it.
    assert schema.json()["x-record-kinds"]["vehicle"] == {
        "required": ["plate", "type"],
        "optional": ["registered_on", "value"],
        "amounts": ["value"],
    }


async def test_a_built_in_name_is_taken(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    integrator = await api_client(role="integrator", region="00")

    response = await integrator.post("/v1/connectors", json=_tax_spec(live_service, name="bank"))

    assert response.status_code == 409


async def test_a_registered_connector_not_in_force_has_health_and_history_but_no_pause(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    """Listed with health `unknown` before it is enabled, so its own pages answer too (the
    listing links them): its health says why it is not assessed, its history is empty,
    and a pause is a conflict that says what to do, not a 404 denying it exists."""
    integrator = await api_client(role="integrator", region="00")
    operator = await api_client(role="operator", region="00")
    name = f"idle_{uuid.uuid4().hex[:8]}"
    registered = await integrator.post("/v1/connectors", json=_tax_spec(live_service, name=name))
    assert registered.status_code == 201, registered.text

    health = await operator.get(f"/v1/connectors/{name}/health")
    history = await operator.get(f"/v1/connectors/{name}/history")
    paused = await operator.post(f"/v1/connectors/{name}/pause", json={"reason": "maintenance"})
    resumed = await operator.post(f"/v1/connectors/{name}/resume")

    assert health.status_code == 200, health.text
    assert (health.json()["status"], health.json()["reason"]) == (
        "unknown",
        "registered, not enabled",
    )
    assert (health.json()["calls"], health.json()["breaker"]) == (0, "closed")
    assert history.status_code == 200, history.text
    assert all(point["calls"] == 0 for point in history.json()["hour"])
    for refused in (paused, resumed):
        assert refused.status_code == 409, refused.text
        assert "not in force" in refused.json()["detail"]
        assert f"/v1/connectors/{name}/enable" in refused.json()["detail"]
    events = await operator.get(f"/v1/connectors/{name}/events")
    assert events.json()["items"] == []
    assert (await operator.get("/v1/connectors/no_such/health")).status_code == 404
    assert (await operator.get("/v1/connectors/no_such/history")).status_code == 404
    # Its test read's date is a date as everywhere else: ISO, within the years hedui knows.
    for as_of in ("9999-12-31", "0001-01-01", "2026-01-20T00:00:00Z", 20260120):
        tested = await integrator.post(
            f"/v1/connectors/{name}/test",
            json={"region_code": "530102", "members": [{"id_number": make_id_number()}],
                  "as_of": as_of},
        )  # fmt: skip
        assert tested.status_code == 422, (as_of, tested.text)
        assert tested.json()["errors"][0]["loc"] == ["body", "as_of"]


@pytest.fixture(scope="module")
async def hostile() -> AsyncIterator[tuple[HostilePartner, str]]:
    partner = HostilePartner()
    async with serving(partner, lifespan="off") as base_url:
        yield partner, base_url


async def test_an_answer_the_spec_would_copy_without_end_is_malformed_quickly(
    api_client: ClientFactory, live_service: LiveService, hostile: tuple[HostilePartner, str]
) -> None:
    """400 copies of each item pass registration; a partner answering with thousands of
    items makes them cost more than the answer's budget: the test read says the answer is
    malformed, at once, instead of building millions of values."""
    partner, base_url = hostile
    integrator = await api_client(role="integrator", region="00")
    person = make_id_number()
    hit = {"sfzh": person, "found": True, "taxYear": 2025, "taxableIncome": 100}

    async def thousands(path: str, body: bytes) -> Answer:
        return Answer(body=json.dumps({"retCode": "000000", "results": [hit] * 5000}).encode())

    partner.answer = thousands
    twenty = "[" + ",".join(["@"] * 20) + "]"
    spec = _tax_spec(live_service, name="copying_tax")
    spec["base_url"] = f"{base_url}/tax"
    spec["response"]["records"] = f"results[].{twenty}[].{twenty}[] | [?found]"
    created = await integrator.post("/v1/connectors", json=spec)
    assert created.status_code == 201, created.text

    started = time.perf_counter()
    tested = await integrator.post(
        "/v1/connectors/copying_tax/test",
        json={"region_code": "530102", "members": [{"id_number": person}]},
    )

    assert time.perf_counter() - started < 10
    assert tested.status_code == 200, tested.text
    result = tested.json()
    assert (result["ok"], result["records"]) == (False, [])
    assert result["error"].startswith("MalformedResponse: response.records: evaluating")


async def test_a_stored_spec_the_checks_now_refuse_is_never_test_read(
    api_client: ClientFactory,
    live_service: LiveService,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A version stored before an expression was checked for the copies it makes: a test
    read of it is a 409 asking for a corrected version, not a 500 and not a read."""
    integrator = await api_client(role="integrator", region="00")
    created = await integrator.post("/v1/connectors", json=_tax_spec(live_service, name="old_tax"))
    assert created.status_code == 201, created.text
    spec = created.json()["spec"]
    spec["response"]["records"] = "results" + ("[].[" + ",".join(["@"] * 20) + "][]") * 7
    async with session_factory() as session:
        await session.execute(
            update(StoredConnectorVersion)
            .where(StoredConnectorVersion.name == "old_tax")
            .values(spec=spec)
        )
        await session.commit()

    try:
        tested = await integrator.post(
            "/v1/connectors/old_tax/test",
            json={"region_code": "530102", "members": [{"id_number": make_id_number()}]},
        )
    finally:
        # The database is the run's: no spec that no longer loads is left for the tests
        # after this one (a command reading the connectors would say it cannot).
        async with session_factory() as session:
            await session.execute(
                update(StoredConnectorVersion)
                .where(StoredConnectorVersion.name == "old_tax")
                .values(spec=created.json()["spec"])
            )
            await session.commit()

    assert tested.status_code == 409, tested.text
    assert tested.json()["detail"] == (
        "Version 1's spec no longer passes validation: PUT a corrected version"
    )


@dataclass(frozen=True)
class Upgraded:
    """A service started after `tax` (enabled) was registered, whose stored version 1 it
    can no longer load."""

    integrator: httpx.AsyncClient
    caseworker: httpx.AsyncClient


@pytest.fixture
async def upgraded(own_database_url: str, tmp_path: Path) -> AsyncIterator[Upgraded]:
    engine = create_engine(own_database_url)
    tokens = {}
    async with create_session_factory(engine)() as session:
        for role in ("integrator", "caseworker"):
            _, tokens[role] = await create_api_key(session, role=Role(role), region="00")
        await session.commit()

    def client(service: LiveService, role: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        return httpx.AsyncClient(
            base_url=service.base_url, headers=headers, timeout=30, verify=CLIENT_TLS
        )

    settings = service_settings(own_database_url, tmp_path / "sandbox.db")
    async with running_service(settings) as service, client(service, "integrator") as api:
        created = await api.post("/v1/connectors", json=_tax_spec(service))
        assert created.status_code == 201, created.text
        enabled = await api.post("/v1/connectors/tax/enable", json={"force": True})
        assert enabled.status_code == 200, enabled.text
    # The stored version no longer passes validation, as after an upgrade of hedui.
    async with create_session_factory(engine)() as session:
        spec = created.json()["spec"]
        spec["response"]["records"] = "results[?"
        await session.execute(
            update(StoredConnectorVersion)
            .where(StoredConnectorVersion.name == "tax")
            .values(spec=spec)
        )
        await session.commit()
    await engine.dispose()

    settings = service_settings(own_database_url, tmp_path / "sandbox.db")
    async with (
        running_service(settings) as service,
        client(service, "integrator") as integrator,
        client(service, "caseworker") as caseworker,
    ):
        yield Upgraded(integrator, caseworker)


async def _report_of_one(caseworker: httpx.AsyncClient) -> dict[str, Any]:
    """The report of a new verification of one person the sandbox partners know."""
    person = make_id_number("530102", birth="19700101", sequence=5)
    await caseworker.post("/sandbox/people", json={"id_number": person})
    done = await caseworker.post(
        "/v1/verifications",
        json=verification_body([member(person)], region_code="530102"),
        headers={"Prefer": "wait=20"},
    )
    assert done.status_code == 200, done.text
    report = await caseworker.get(f"/v1/verifications/{done.json()['id']}/report")
    assert report.status_code == 200, report.text
    body: dict[str, Any] = report.json()
    return body


async def test_an_enabled_connector_whose_spec_no_longer_loads_makes_reports_review(
    upgraded: Upgraded,
) -> None:
    """An enabled connector whose stored spec this hedui can no longer load stays in new
    verifications: its source is `error` saying so and to PUT a corrected version (the
    partner is not asked), the report is incomplete and `review`, never `eligible` without
    it; it is listed as enabled, its health `down` with the same reason."""
    listed = {c["name"]: c for c in (await upgraded.integrator.get("/v1/connectors")).json()}
    health = (await upgraded.integrator.get("/v1/connectors/tax/health")).json()

    report = await _report_of_one(upgraded.caseworker)

    sources = {source["source"]: source for source in report["sources"]}
    assert "tax" in sources, (sources, report["recommendation"])
    assert (sources["tax"]["status"], sources["tax"]["connector_version"]) == ("error", "1")
    assert sources["tax"]["detail"] == (
        "the stored spec of version 1 no longer loads in this version of hedui; "
        "PUT /v1/connectors/tax a corrected spec, test-read and enable it "
        "(or disable the connector)"
    )
    assert (report["complete"], report["recommendation"]) == (False, "review")
    assert (listed["tax"]["enabled"], listed["tax"]["version"], listed["tax"]["health"]) == (
        True,
        "1",
        "down",
    ), listed["tax"]
    assert (health["status"], health["reason"]) == ("down", sources["tax"]["detail"])


async def test_a_disabled_connector_whose_spec_no_longer_loads_is_not_asked(
    upgraded: Upgraded,
) -> None:
    """Disabling a connector whose stored spec no longer loads leaves it out of new
    verifications, as any disabled connector."""
    disabled = await upgraded.integrator.post("/v1/connectors/tax/disable", json={})
    assert disabled.status_code == 200, disabled.text

    async def left_out() -> bool:
        # Out of force in this process: listed from the table alone, its health unknown.
        listed = {c["name"]: c for c in (await upgraded.integrator.get("/v1/connectors")).json()}
        return (listed["tax"]["enabled"], listed["tax"]["health"]) == (False, "unknown")

    await _until(left_out)
    report = await _report_of_one(upgraded.caseworker)

    assert "tax" not in {source["source"] for source in report["sources"]}, report["sources"]


async def _trail(auditor: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    page = await auditor.get("/v1/audit", params={"action": "connector.test", "object_id": name})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


class TestTestReadScope:
    """A test read shows what a partner holds about people, amounts included: only about a
    household of the key's region, and the trail names whom it read (masked)."""

    @pytest.fixture
    async def connector(self, api_client: ClientFactory, live_service: LiveService) -> str:
        name = f"scoped_tax_{uuid.uuid4().hex[:8]}"
        integrator = await api_client(role="integrator", region="00")
        created = await integrator.post("/v1/connectors", json=_tax_spec(live_service, name=name))
        assert created.status_code == 201, created.text
        return name

    async def test_another_region_s_person_is_403_and_the_probe_is_recorded(
        self, http: httpx.AsyncClient, api_client: ClientFactory, connector: str
    ) -> None:
        person = make_id_number("110105")
        await http.post(
            "/sandbox/people",
            json={"id_number": person, "tax": {"year": 2025, "annual_taxable_income": "1.00"}},
        )
        integrator = await api_client(role="integrator", region="530103")

        response = await integrator.post(
            f"/v1/connectors/{connector}/test",
            json={
                "region_code": "110105",
                "members": [{"id_number": person}],
                "consent_document_id": "MADE-UP-1",
            },
        )

        assert response.status_code == 403, response.text
        assert response.json()["type"] == "/problems/forbidden"
        assert response.json()["errors"] == [
            {"loc": ["body", "region_code"], "msg": "outside the key's region"}
        ]
        assert "records" not in response.text
        (event,) = await _trail(await api_client(role="auditor", region="530103"), connector)
        assert (event["outcome"], event["object_region"]) == ("403", None)
        assert event["detail"] == f"members {person[:6]}********{person[-4:]}"
        assert person not in str(event)

    async def test_a_person_of_the_key_s_region_is_read_and_named_masked(
        self, http: httpx.AsyncClient, api_client: ClientFactory, connector: str
    ) -> None:
        first, second = make_id_number("530103"), make_id_number("530103")
        await http.post(
            "/sandbox/people",
            json={"id_number": first, "tax": {"year": 2025, "annual_taxable_income": "1.00"}},
        )
        integrator = await api_client(role="integrator", region="530103")

        response = await integrator.post(
            f"/v1/connectors/{connector}/test",
            json={
                "region_code": "530103",
                "members": [{"id_number": first, "name": "张三"}, {"id_number": second}],
            },
        )

        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True, response.text
        (event,) = await _trail(await api_client(role="auditor", region="530103"), connector)
        assert (event["outcome"], event["object_region"]) == ("ok", "530103")
        assert event["detail"] == (
            f"members {first[:6]}********{first[-4:]}, {second[:6]}********{second[-4:]}"
        )
        assert first not in str(event)
        assert second not in str(event)
        assert "张三" not in str(event)
        # The read is about a household of 530103: not another region's auditors' business.
        assert await _trail(await api_client(role="auditor", region="530102"), connector) == []

    async def test_a_township_key_test_reads_nobody(
        self, api_client: ClientFactory, connector: str
    ) -> None:
        """A test read names a county, never a township: a township key would reach every
        township of its county."""
        integrator = await api_client(role="integrator", region="530103001")

        response = await integrator.post(
            f"/v1/connectors/{connector}/test",
            json={"region_code": "530103", "members": [{"id_number": make_id_number("530103")}]},
        )

        assert response.status_code == 403, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "region_code"]


async def test_a_connector_out_of_force_is_listed_as_the_version_it_would_be_asked_at(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    """Enabled at version 1, given a version 2 with another title, then disabled: listed
    with version 1's title and kind beside version 1, not version 2's title beside it."""
    integrator = await api_client(role="integrator", region="00")
    name = f"shown_{uuid.uuid4().hex[:8]}"
    first = await integrator.post(
        "/v1/connectors", json=_tax_spec(live_service, name=name, title="县税务 v1")
    )
    assert first.status_code == 201, first.text
    enabled = await integrator.post(f"/v1/connectors/{name}/enable", json={"force": True})
    assert enabled.status_code == 200, enabled.text
    second = await integrator.put(
        f"/v1/connectors/{name}", json=_tax_spec(live_service, name=name, title="县税务 v2")
    )
    assert second.status_code == 200, second.text
    disabled = await integrator.post(f"/v1/connectors/{name}/disable")
    assert disabled.status_code == 200, disabled.text

    listed = (await integrator.get("/v1/connectors")).json()
    (shown,) = [item for item in listed if item["name"] == name]
    assert (shown["title"], shown["version"], shown["kinds"]) == (
        "县税务 v1",
        "1",
        ["taxed_income"],
    )


async def test_a_pause_just_after_enabling_says_to_try_again_not_to_enable(
    own_database_url: str, tmp_path: Path
) -> None:
    """Enabled, but not read yet by the process asked (within HEDUI_CONNECTOR_REFRESH_S):
    the conflict says to try again shortly, not to enable what is enabled."""
    tokens = await api_tokens(own_database_url, "integrator", "operator", region="00")
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", connector_refresh_s=60)
    async with running_service(settings) as service:
        headers = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
        async with (
            httpx.AsyncClient(
                base_url=service.base_url, headers=headers["integrator"], verify=CLIENT_TLS
            ) as api,
            httpx.AsyncClient(
                base_url=service.base_url, headers=headers["operator"], verify=CLIENT_TLS
            ) as ops,
        ):
            created = await api.post("/v1/connectors", json=_tax_spec(service))
            assert created.status_code == 201, created.text
            enabled = await api.post("/v1/connectors/tax/enable", json={"force": True})
            assert enabled.status_code == 200, enabled.text

            paused = await ops.post("/v1/connectors/tax/pause", json={"reason": "maintenance"})

    assert paused.status_code == 409, paused.text
    detail = paused.json()["detail"]
    assert "enabled, not yet in force in this process" in detail
    assert "try again in a few seconds" in detail
    assert "/enable" not in detail
