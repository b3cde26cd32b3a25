"""FastAPI's own OpenTelemetry stays off in the sandbox, as in hedui's app: with a tracer, meter or
logger provider configured in the process, a partner call consults neither (the check alone
read the environment at every call)."""

import httpx

from tests.conftest import ConfiguredProvider
from tests.sandbox.helpers import ALICE


async def test_a_partner_call_exports_nothing(
    client: httpx.AsyncClient, otel_providers: list[ConfiguredProvider]
) -> None:
    response = await client.post("/housing_fund/account/query", data={"zjhm": ALICE})

    assert response.status_code == 200
    assert [provider.asked for provider in otel_providers] == [[], [], []]
