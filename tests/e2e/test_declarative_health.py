"""A declarative connector registered and enabled over the API is health-checked like a
built-in one: a quiet partner that is down shows `down` without a verification asking it,
and once the connector is disabled it is no longer checked.

The service runs on a database of its own with probes every 0.2 s (60 s by default).
"""

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CLIENT_TLS, LiveService, running_service, service_settings
from tests.connectors.declarative.specs import example
from tests.factories import make_id_number
from tests.stored import api_tokens

PROBE_INTERVAL_S = 0.2


@dataclass
class Office:
    service: LiveService
    integrator: httpx.AsyncClient
    operator: httpx.AsyncClient
    plain: httpx.AsyncClient


@pytest.fixture
async def office(own_database_url: str, tmp_path: Path) -> AsyncIterator[Office]:
    tokens = await api_tokens(own_database_url, "integrator", "operator", region="00")
    settings = service_settings(
        own_database_url,
        tmp_path / "sandbox.db",
        health_probe_interval_s=PROBE_INTERVAL_S,
        health_sync_s=0.05,
    )
    async with running_service(settings) as service:

        def client(token: str | None = None) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {token}"} if token else None
            return httpx.AsyncClient(
                base_url=service.base_url, headers=headers, timeout=30, verify=CLIENT_TLS
            )

        async with (
            client(tokens["integrator"]) as integrator,
            client(tokens["operator"]) as operator,
            client() as plain,
        ):
            yield Office(service, integrator, operator, plain)


async def until(check: Callable[[], Awaitable[Any]], tries: int = 400) -> Any:
    """Poll `check()` until it returns something truthy (bounded; never a timing assertion)."""
    for _ in range(tries):
        if result := await check():
            return result
        await asyncio.sleep(0.025)
    raise AssertionError("condition never held")


async def probes(office: Office, connector: str) -> int:
    """`hedui_connector_probes_total` of `connector`, passing and failing, from `/metrics`."""
    text = (await office.plain.get("/metrics")).text
    pattern = rf'hedui_connector_probes_total\{{connector="{connector}",result="\w+"\}} (\S+)'
    return sum(int(float(value)) for value in re.findall(pattern, text))


async def tax_queries(office: Office) -> int:
    """Household queries the sandbox's tax agency received (a health check is none)."""
    counts: dict[str, int] = (await office.plain.get("/sandbox/queries")).json()
    return counts.get("tax", 0)


async def tax_health(office: Office) -> dict[str, Any]:
    response = await office.operator.get("/v1/connectors/tax/health")
    assert response.status_code == 200, response.text
    health: dict[str, Any] = response.json()
    return health


async def register_and_enable_tax(office: Office) -> None:
    spec = example("tax", f"{office.service.base_url}/sandbox")
    created = await office.integrator.post("/v1/connectors", json=spec)
    assert created.status_code == 201, created.text
    person = {"id_number": make_id_number(), "name": "张三"}
    tested = await office.integrator.post(
        "/v1/connectors/tax/test", json={"region_code": "530102", "members": [person]}
    )
    assert tested.json()["ok"] is True, tested.text
    enabled = await office.integrator.post("/v1/connectors/tax/enable", json={})
    assert enabled.status_code == 200, enabled.text


async def test_an_enabled_declarative_connector_is_probed_and_a_disabled_one_is_not(
    office: Office,
) -> None:
    await register_and_enable_tax(office)
    queries = await tax_queries(office)

    async def probed(status: str, reason: str) -> bool:
        response = await office.operator.get("/v1/connectors/tax/health")
        if response.status_code == 404:  # the service has not read the registration yet
            return False
        health = response.json()
        return (health["status"], health["reason"]) == (status, reason) and bool(
            health["last_probe"]
        )

    # A quiet connector has a status from its checks alone.
    await until(lambda: probed("operational", "health check passing"))

    fault = await office.plain.put("/sandbox/faults/tax", json={"mode": "down"})
    assert fault.status_code == 200
    await until(lambda: probed("down", "health check failing"))
    health = await tax_health(office)
    assert health["last_probe"]["ok"] is False
    assert health["calls"] == 0
    metrics = (await office.plain.get("/metrics")).text
    failed = r'hedui_connector_probes_total\{connector="tax",result="failed"\} [1-9]'
    assert re.search(failed, metrics)

    await office.plain.delete("/sandbox/faults/tax")
    await until(lambda: probed("operational", "health check passing"))
    assert await tax_queries(office) == queries  # no household was asked about

    disabled = await office.integrator.post("/v1/connectors/tax/disable")
    assert disabled.status_code == 200, disabled.text

    async def out_of_force() -> bool:
        listed = (await office.operator.get("/v1/connectors")).json()
        (tax,) = [item for item in listed if item["name"] == "tax"]
        return tax["health"] == "unknown"  # what the service lists for one not in force

    await until(out_of_force)
    # A round that began before the service saw the change may still end: two rounds of
    # the built-in connectors later, none has begun since.
    bank = await probes(office, "bank")
    await until(lambda: _at_least(probes(office, "bank"), bank + 2))
    checked = await probes(office, "tax")
    await until(lambda: _at_least(probes(office, "bank"), bank + 4))
    assert await probes(office, "tax") == checked


async def _at_least(count: Awaitable[int], least: int) -> bool:
    return await count >= least


async def test_a_disabled_connector_does_not_stay_down_in_metrics(office: Office) -> None:
    """Its gauges go with its card on the dashboard (the alert on `status="down"` stops),
    and come back when it is enabled again; its counts of past calls and probes stay."""
    await register_and_enable_tax(office)
    fault = await office.plain.put("/sandbox/faults/tax", json={"mode": "down"})
    assert fault.status_code == 200

    async def down() -> bool:
        response = await office.operator.get("/v1/connectors/tax/health")
        return response.status_code == 200 and response.json()["status"] == "down"

    await until(down)
    down_series = r'hedui_connector_status\{connector="tax",status="down"\} 1\.0'
    assert re.search(down_series, (await office.plain.get("/metrics")).text)

    disabled = await office.integrator.post("/v1/connectors/tax/disable")
    assert disabled.status_code == 200, disabled.text

    async def gone_from_dashboard() -> bool:
        response = await office.operator.get("/dashboard/data")
        if response.status_code == 404:  # disabled while the dashboard read its cards
            return False
        assert response.status_code == 200, response.text
        return all(card["summary"]["name"] != "tax" for card in response.json()["connectors"])

    await until(gone_from_dashboard)
    for _ in range(3):  # scrape after scrape, while the probes and syncs go on
        metrics = (await office.plain.get("/metrics")).text
        assert not re.search(down_series, metrics), "disabled connector still reported down"
        await asyncio.sleep(PROBE_INTERVAL_S)
    for gauge in ("status", "breaker_state", "paused"):
        assert not re.search(rf'hedui_connector_{gauge}\{{connector="tax"', metrics), gauge

    async def in_flight_gone() -> bool:
        # Kept while a fetch begun before the disable is still under way (a busy machine
        # can hold one past the scrapes above), removed at the scrape after it ends.
        text = (await office.plain.get("/metrics")).text
        return not re.search(r'hedui_connector_in_flight\{connector="tax"', text)

    await until(in_flight_gone)
    assert re.search(r'hedui_connector_probes_total\{connector="tax",result="failed"\}', metrics)
    assert re.search(r'hedui_connector_status\{connector="bank",status="\w+"\} 1\.0', metrics)

    await office.plain.delete("/sandbox/faults/tax")
    enabled = await office.integrator.post("/v1/connectors/tax/enable", json={})
    assert enabled.status_code == 200, enabled.text

    async def shown_again() -> bool:
        text = (await office.plain.get("/metrics")).text
        return all(
            re.search(rf'hedui_connector_{gauge}\{{connector="tax"[^}}]*\}} 0\.0', text)
            for gauge in ("breaker_state", "paused", "in_flight")
        ) and bool(re.search(r'hedui_connector_status\{connector="tax",status="\w+"\} 1\.0', text))

    await until(shown_again)


async def test_a_paused_partner_gets_no_test_read_and_its_pause_outlives_a_disable(
    office: Office,
) -> None:
    """An operator's pause stops every call to the partner, an integrator's test read
    too; a connector paused then disabled keeps its pause (listed, and held again when it
    is enabled), and the operator can lift it while it is out of force."""
    await register_and_enable_tax(office)
    await until(lambda: _listed_in_force(office))
    paused = await office.operator.post("/v1/connectors/tax/pause", json={"reason": "asked to"})
    assert paused.status_code == 200, paused.text
    queries = await tax_queries(office)

    person = {"id_number": make_id_number(), "name": "张三"}
    tested = await office.integrator.post(
        "/v1/connectors/tax/test", json={"region_code": "530102", "members": [person]}
    )
    assert tested.status_code == 409, tested.text
    assert "paused by an operator" in tested.json()["detail"]
    assert "/v1/connectors/tax/resume" in tested.json()["detail"]
    assert await tax_queries(office) == queries

    disabled = await office.integrator.post("/v1/connectors/tax/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["paused"]["reason"] == "asked to"
    listed = await _tax_listed(office)
    assert listed["enabled"] is False
    assert listed["paused"]["reason"] == "asked to"
    again = await office.operator.post("/v1/connectors/tax/pause", json={"reason": "twice"})
    assert again.status_code == 409, again.text
    # The integrator sees the pause on the connector's own resource, and enabling it
    # again says it is paused (it holds again at once).
    resource = await office.integrator.get("/v1/connectors/tax")
    assert resource.json()["paused"]["reason"] == "asked to", resource.text
    enabled = await office.integrator.post("/v1/connectors/tax/enable", json={"force": True})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["enabled"] is True
    assert enabled.json()["paused"]["reason"] == "asked to"

    resumed = await office.operator.post("/v1/connectors/tax/resume", json={"reason": "done"})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["paused"] is None
    assert (await _tax_listed(office))["paused"] is None
    assert (await office.integrator.get("/v1/connectors/tax")).json()["paused"] is None
    tested = await office.integrator.post(
        "/v1/connectors/tax/test", json={"region_code": "530102", "members": [person]}
    )
    assert tested.json()["ok"] is True, tested.text
    assert await tax_queries(office) == queries + 1


async def _tax_listed(office: Office) -> dict[str, Any]:
    listed = (await office.operator.get("/v1/connectors")).json()
    (tax,) = [item for item in listed if item["name"] == "tax"]
    return tax  # type: ignore[no-any-return]


async def _listed_in_force(office: Office) -> bool:
    return (await _tax_listed(office))["health"] != "unknown"
