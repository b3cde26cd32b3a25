"""Attacks a hostile API caller would try, each held by the running service over real HTTP."""

from typing import Any

import pytest

from tests.conftest import ClientFactory, LiveService
from tests.connectors.declarative.specs import example


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


async def test_a_spec_path_below_the_allowed_host_is_accepted(
    api_client: ClientFactory, live_service: LiveService
) -> None:
    integrator = await api_client(role="integrator", region="00")

    response = await integrator.post(
        "/v1/connectors", json=_spec_on_bare_host(live_service, "bare_host_tax")
    )

    assert response.status_code == 201, response.text
