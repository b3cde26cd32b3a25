"""hedui's API exports nothing through FastAPI's own OpenTelemetry: what a request records is
hedui's to say (structlog, Prometheus, the audit trail), even in a process where an
OpenTelemetry provider is configured."""

import httpx

from tests.conftest import ConfiguredProvider


async def test_a_request_exports_nothing(
    http: httpx.AsyncClient, otel_providers: list[ConfiguredProvider]
) -> None:
    response = await http.get("/healthz")

    assert response.status_code == 200
    assert [provider.asked for provider in otel_providers] == [[], [], []]
