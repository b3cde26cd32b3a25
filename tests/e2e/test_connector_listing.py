"""`GET /v1/connectors` and `GET /v1/connectors/{name}` for every origin, over real HTTP."""

import asyncio
from typing import Any

from pydantic import SecretStr

from connectors.base import ConnectorConfig
from service.connector.service import masked_config
from tests.conftest import ClientFactory, LiveService
from tests.connectors.declarative.specs import example


async def test_the_list_has_builtin_and_registered_declarative_connectors(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    integrator = await api_client(role="integrator", region="00")
    operator = await api_client(role="operator", region="00")
    spec = example("business", f"{live_service.base_url}/sandbox")
    spec["name"] = "listed_business"
    created = await integrator.post("/v1/connectors", json=spec)
    assert created.status_code == 201, created.text

    response = await operator.get("/v1/connectors")

    assert response.status_code == 200
    listed: dict[str, dict[str, Any]] = {item["name"]: item for item in response.json()}
    assert listed["bank"]["origin"] == "builtin"
    assert listed["bank"]["kinds"] == ["bank_account"]
    assert listed["bank"]["enabled"] is True
    declared = listed["listed_business"]
    assert declared["origin"] == "declarative"
    assert (declared["enabled"], declared["health"], declared["version"]) == (
        False,
        "unknown",
        "1",
    )
    assert declared["kinds"] == ["business"]
    assert declared["title"] == spec["title"]


async def test_an_enabled_declarative_connector_nobody_asked_yet_is_listed_with_health(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    """Listed (and its health read) before any verification has called it: never a 500."""
    integrator = await api_client(role="integrator", region="00")
    spec = example("tax", f"{live_service.base_url}/sandbox")
    spec["name"] = "listed_tax"
    assert (await integrator.post("/v1/connectors", json=spec)).status_code == 201
    enabled = await integrator.post("/v1/connectors/listed_tax/enable", json={"force": True})
    assert enabled.status_code == 200, enabled.text
    try:
        for _ in range(100):  # processes pick it up within a refresh (0.2 s here)
            listed = await integrator.get("/v1/connectors")
            assert listed.status_code == 200, listed.text
            entry = next(c for c in listed.json() if c["name"] == "listed_tax")
            if entry["enabled"] and entry["breaker"] == "closed" and entry["version"] == "1":
                health = await integrator.get("/v1/connectors/listed_tax/health")
                if health.status_code == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("never listed as in force")
        assert entry["origin"] == "declarative"
        assert health.json()["status"] == "unknown"
    finally:
        await integrator.post("/v1/connectors/listed_tax/disable")


async def test_a_builtin_connector_reads_with_its_config(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    integrator = await api_client(role="integrator", region="00")

    response = await integrator.get("/v1/connectors/pensions")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["origin"], body["kinds"]) == ("pensions", "builtin", ["pension"])
    assert body["config"]["base_url"].endswith("/sandbox/pensions")
    assert "batch_size" in body["config"]
    assert "batch_size" in body["config_schema"]["properties"]
    assert body["package"] == "hedui"


async def test_an_unknown_connector_is_404(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    operator = await api_client(role="operator", region="00")
    response = await operator.get("/v1/connectors/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_caseworkers_read_no_connector(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    caseworker = await api_client(role="caseworker")
    assert (await caseworker.get("/v1/connectors/bank")).status_code == 403


class _SecretConfig(ConnectorConfig):
    api_key: SecretStr
    client_token: str = "plain-looking"
    sm4_key: str = "0123456789abcdef"
    access_key: str = "AK-plain"
    private_pem: str = "-----BEGIN PRIVATE KEY-----"
    page_size: int = 10


def test_secret_like_settings_and_url_credentials_are_masked() -> None:
    config = _SecretConfig(base_url="https://user:pw@partner.example:8443/x", api_key="k-123")

    shown = masked_config(config)

    assert shown["api_key"] == "***"
    assert shown["client_token"] == "***"
    assert shown["sm4_key"] == shown["access_key"] == shown["private_pem"] == "***"
    assert shown["page_size"] == 10
    assert shown["base_url"] == "https://***@partner.example:8443/x"
    assert "k-123" not in str(shown)
    assert "pw" not in shown["base_url"]
