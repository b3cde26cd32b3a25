"""Consent on every partner call, over real HTTP: the sandbox counts what it was told.

Every request hedui sends about a household carries the verification's consent document id
(`X-Hedui-Consent-Id`) and its program (`X-Hedui-Purpose`). The sandbox agencies note
both for each household query (`GET /sandbox/queries/consent`) and count those without
them (`missing`). Each test gives its verification a consent id of its own and compares,
per agency, the queries that carried it with all the household queries received.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.runtime import Runtime, build_runtime
from tests.conftest import CLIENT_TLS, LiveService, running_service, service_settings
from tests.connectors.declarative.specs import example
from tests.factories import make_id_number, member, verification_body

BUILT_IN = ("vehicles", "pensions", "housing_fund", "real_estate", "public_payroll", "bank")
FIVE_MINUTES_MS = 300_000


@dataclass
class Service:
    live: LiveService
    caseworker: httpx.AsyncClient
    integrator: httpx.AsyncClient
    runtime: Runtime
    """Another process's runtime on the same database: it runs the collect passes."""


@pytest.fixture(scope="module")
async def service(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Service]:
    settings = service_settings(
        fresh_database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        connector_timeout_s=5.0,
        collect_sweep_s=0,  # the tests collect, with their own clock
        connectors={"bank": {"park_after_s": 0.5, "collect_deadline_s": 3600}},
    )
    async with running_service(settings) as live, build_runtime(settings) as runtime:
        async with runtime.session_factory() as session:
            _, caseworker = await create_api_key(session, role=Role.caseworker, region="53")
            _, integrator = await create_api_key(session, role=Role.integrator, region="00")
            await session.commit()
        async with (
            httpx.AsyncClient(
                base_url=live.base_url,
                headers={"Authorization": f"Bearer {caseworker}"},
                verify=CLIENT_TLS,
            ) as caseworker_client,
            httpx.AsyncClient(
                base_url=live.base_url,
                headers={"Authorization": f"Bearer {integrator}"},
                verify=CLIENT_TLS,
            ) as integrator_client,
        ):
            yield Service(live, caseworker_client, integrator_client, runtime)
            await caseworker_client.delete("/sandbox/faults")
            await caseworker_client.delete("/sandbox/clock")


def _consent_id() -> str:
    return f"AUTH-{uuid.uuid4().hex[:12]}"


async def _submit(
    service: Service, consent_id: str, *, program: str = "dibao", **extra: Any
) -> dict[str, Any]:
    person = make_id_number("530103")
    body = verification_body([member(person)], region_code="530103", program=program)
    body["consent"]["document_id"] = consent_id
    body.update(extra)
    response = await service.caseworker.post(
        "/v1/verifications", json=body, headers={"Prefer": "wait=20"}
    )
    assert response.status_code in (200, 202), response.text
    read = await service.caseworker.get(f"/v1/verifications/{response.json()['id']}")
    assert read.status_code == 200, read.text
    result: dict[str, Any] = read.json()
    return result


async def _told(service: Service, consent_id: str | None = None) -> dict[str, Any]:
    """Per agency: household queries, those without the headers, and those with ours."""
    params = {"consent_id": consent_id} if consent_id else {}
    response = await service.caseworker.get("/sandbox/queries/consent", params=params)
    assert response.status_code == 200, response.text
    agencies: dict[str, Any] = response.json()["agencies"]
    return agencies


async def _reset(service: Service) -> None:
    assert (await service.caseworker.delete("/sandbox/queries/consent")).status_code == 200


def _carried(agency: dict[str, Any], consent_id: str, purpose: str) -> int:
    """How many of the agency's household queries carried this consent and purpose."""
    return sum(
        seen["calls"]
        for seen in agency["seen"]
        if (seen["consent_id"], seen["purpose"]) == (consent_id, purpose)
    )


async def test_every_partner_call_of_a_verification_carries_its_consent_and_purpose(
    service: Service,
) -> None:
    await _reset(service)
    consent_id = _consent_id()

    done = await _submit(service, consent_id, program="linshi")

    assert done["status"] == "completed", done
    told = await _told(service)
    for source in BUILT_IN:
        agency = told[source]
        assert agency["calls"] >= 1, (source, agency)
        assert agency["missing"] == 0, (source, agency)
        assert _carried(agency, consent_id, "linshi") == agency["calls"], (source, agency)
    # The bank was asked and polled: every one of its calls said why.
    assert told["bank"]["calls"] >= 2


async def test_a_parked_bank_collect_carries_the_consent_rebuilt_from_the_verification(
    service: Service,
) -> None:
    """The collect runs later, in another process's job: the context comes from the row."""
    fault = await service.caseworker.put(
        "/sandbox/faults/bank", json={"mode": "ok", "processing_ms": FIVE_MINUTES_MS}
    )
    assert fault.status_code == 200, fault.text
    consent_id = _consent_id()
    try:
        accepted = await _submit(service, consent_id, program="dibao")
        assert accepted["status"] == "running", accepted
        bank = next(s for s in accepted["sources"] if s["source"] == "bank")
        assert bank["status"] == "awaiting"
        submitted = (await _told(service, consent_id))["bank"]
        assert _carried(submitted, consent_id, "dibao") >= 1

        await _reset(service)
        assert (await service.caseworker.post("/sandbox/clock", json={"advance_s": 300})).is_success
        later = datetime.now(UTC) + timedelta(minutes=6)
        assert await service.runtime.collector.collect_due(now=later) == 1
    finally:
        await service.caseworker.delete("/sandbox/faults/bank")
        await service.caseworker.delete("/sandbox/clock")

    done = await service.caseworker.get(f"/v1/verifications/{accepted['id']}")
    assert done.json()["status"] == "completed", done.json()
    told = await _told(service)
    assert told["bank"]["calls"] == 1  # the collect's one poll
    assert told["bank"]["missing"] == 0
    assert _carried(told["bank"], consent_id, "dibao") == 1


async def test_a_declarative_connector_sends_the_consent_and_purpose(service: Service) -> None:
    spec = example("tax", f"{service.live.base_url}/sandbox")
    created = await service.integrator.post("/v1/connectors", json=spec)
    assert created.status_code == 201, created.text
    enabled = await service.integrator.post("/v1/connectors/tax/enable", json={"force": True})
    assert enabled.status_code == 200, enabled.text
    try:
        await _reset(service)
        consent_id = _consent_id()
        # Every process takes up the connector within its refresh period: ask until the
        # tax agency is among the sources.
        for _ in range(50):
            done = await _submit(service, consent_id, program="dibao")
            if any(s["source"] == "tax" for s in done["sources"]):
                break
        else:
            raise AssertionError("the tax connector never came into use")
        told = await _told(service)
        assert told["tax"]["calls"] >= 1
        assert told["tax"]["missing"] == 0
        assert _carried(told["tax"], consent_id, "dibao") == told["tax"]["calls"]
    finally:
        await service.integrator.post("/v1/connectors/tax/disable")


async def test_a_test_read_says_it_is_a_connector_test(service: Service) -> None:
    spec = example("tax", f"{service.live.base_url}/sandbox") | {"name": "tax_read"}
    created = await service.integrator.post("/v1/connectors", json=spec)
    assert created.status_code == 201, created.text
    await _reset(service)

    tested = await service.integrator.post(
        "/v1/connectors/tax_read/test",
        json={
            "region_code": "530102",
            "members": [{"id_number": make_id_number()}],
            "consent_document_id": "AUTH-TEST-9",
        },
    )

    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] is True, tested.json()
    told = await _told(service)
    assert told["tax"]["missing"] == 0
    assert _carried(told["tax"], "AUTH-TEST-9", "connector_test") == told["tax"]["calls"] >= 1


async def test_an_agency_requiring_consent_refuses_a_query_without_it(service: Service) -> None:
    required = await service.caseworker.put("/sandbox/queries/consent", json={"require": True})
    assert required.status_code == 200, required.text
    try:
        async with httpx.AsyncClient(base_url=service.live.base_url, verify=CLIENT_TLS) as bare:
            refused = await bare.post("/sandbox/pensions/batch", json={"requests": []})
            health = await bare.get("/sandbox/pensions/health")
        done = await _submit(service, _consent_id())
    finally:
        await service.caseworker.put("/sandbox/queries/consent", json={"require": False})

    assert refused.status_code == 403
    assert health.status_code == 200  # a health check is about nobody
    # hedui's own calls all carry the headers: nothing of the verification was refused.
    assert done["status"] == "completed", done
    assert {s["status"] for s in done["sources"]} <= {"ok", "no_record"}, done["sources"]
    told = await _told(service)
    assert told["pensions"]["refused"] >= 1


@pytest.mark.parametrize(
    "document_id",
    ["授权书-001", "AUTH 0001", "A" * 65, "AUTH-11010519491231002X", "-leading-dash", ""],
    ids=["chinese", "space", "too long", "id number", "leading dash", "empty"],
)
async def test_a_consent_id_unfit_for_a_header_is_422_naming_it(
    service: Service, document_id: str
) -> None:
    body = verification_body([member(make_id_number())])
    body["consent"]["document_id"] = document_id

    response = await service.caseworker.post("/v1/verifications", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = [error["loc"] for error in response.json()["errors"]]
    assert ["body", "consent", "document_id"] in fields, fields
    assert "11010519491231002X" not in response.text
