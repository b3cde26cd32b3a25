"""An event of a request that creates something names what it created (a webhook's:
`tests/e2e/test_webhooks.py`, whose service allows a receiver)."""

from typing import Any

from tests.conftest import ClientFactory, LiveService
from tests.connectors.declarative.specs import example
from tests.factories import make_id_number, near_relative_body


async def _event(api_client: ClientFactory, actor: str, action: str) -> dict[str, Any]:
    auditor = await api_client(role="auditor", region="00")
    listed = await auditor.get("/v1/audit", params={"action": action, "limit": 500})
    [event] = [item for item in listed.json()["items"] if item["actor_name"] == actor]
    return dict(event)


async def test_near_relative_and_connector_creations_name_their_object(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    registrar = await api_client(role="auditor", region="53", name="creator registrar")
    integrator = await api_client(role="integrator", region="00", name="creator integrator")
    spec = example("tax", f"{live_service.base_url}/sandbox")
    spec["name"] = "created_named_tax"

    relative = await registrar.post(
        "/v1/near-relatives", json=near_relative_body(make_id_number("530102"))
    )
    connector = await integrator.post("/v1/connectors", json=spec)

    assert relative.status_code == 201, relative.text
    assert connector.status_code == 201, connector.text
    created = await _event(api_client, "creator registrar", "near_relative.create")
    assert created["object_id"] == relative.json()["id"]
    created = await _event(api_client, "creator integrator", "connector.register")
    assert created["object_id"] == "created_named_tax"
