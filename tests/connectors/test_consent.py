"""The consent and purpose headers: sent with every request about a household, and only then."""

import httpx
import pytest
from pydantic import ValidationError

from connectors.base import ConnectorConfig
from connectors.http import CONSENT_HEADER, PURPOSE_HEADER, PartnerClient, request
from connectors.pensions import PensionsConnector
from schemas.evidence import RequestContext
from service.connector.conformance import SandboxPartner, code_subject, run_checks

CONTEXT = RequestContext(consent_id="AUTH-0001", purpose="dibao")
CONFIG = ConnectorConfig(base_url="https://partner.test/x")


def recorder() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handle(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json={"ok": True})

    return seen, httpx.MockTransport(handle)


def told(sent: httpx.Request) -> tuple[str | None, str | None]:
    return sent.headers.get(CONSENT_HEADER), sent.headers.get(PURPOSE_HEADER)


class TestPartnerClient:
    async def test_every_way_of_sending_carries_the_context(self) -> None:
        seen, transport = recorder()
        async with PartnerClient(transport=transport, context=CONTEXT) as client:
            await request(client, CONFIG, "POST", "/query", bytes, json={"a": 1})
            await client.get("https://partner.test/x/poll/1")
            async with client.stream("GET", "https://partner.test/x/poll/2") as streamed:
                await streamed.aread()
            # A request the connector built itself, sent as it is.
            await client.send(httpx.Request("POST", "https://partner.test/x/other"))

        assert [told(sent) for sent in seen] == [("AUTH-0001", "dibao")] * 4

    async def test_a_header_of_the_same_name_cannot_replace_it(self) -> None:
        seen, transport = recorder()
        async with PartnerClient(transport=transport, context=CONTEXT) as client:
            await request(client, CONFIG, "GET", "/q", bytes, headers={CONSENT_HEADER: "forged"})

        assert told(seen[0]) == ("AUTH-0001", "dibao")

    async def test_a_request_about_nobody_carries_neither(self) -> None:
        seen, transport = recorder()
        async with PartnerClient(transport=transport, context=CONTEXT) as client:
            await request(client, CONFIG, "POST", "/token", bytes, about_people=False)

        assert told(seen[0]) == (None, None)

    async def test_a_client_without_context_adds_nothing(self) -> None:
        seen, transport = recorder()
        async with PartnerClient(transport=transport) as client:
            await request(client, CONFIG, "GET", "/health", bytes)

        assert told(seen[0]) == (None, None)


class TestRequestContext:
    def test_a_current_id_is_sent_as_it_is(self) -> None:
        assert RequestContext.of("AUTH-2026/001", "tekun").consent_id == "AUTH-2026/001"

    def test_an_id_stored_before_ids_were_bounded_is_encoded_for_a_header(self) -> None:
        context = RequestContext.of("授权书 第1号", "dibao")

        assert context.consent_id == "%E6%8E%88%E6%9D%83%E4%B9%A6%20%E7%AC%AC1%E5%8F%B7"
        assert context.consent_id.isascii()

    def test_an_id_number_in_a_stored_id_is_masked(self) -> None:
        context = RequestContext.of("授权-11010519491231002X", "dibao")

        assert "11010519491231002X" not in context.consent_id
        assert "110105" in context.consent_id

    @pytest.mark.parametrize("purpose", ["", "Dibao", "di bao", "dibao\r\nX-Evil: 1"])
    def test_a_purpose_is_a_lower_case_word(self, purpose: str) -> None:
        with pytest.raises(ValidationError):
            RequestContext(consent_id="AUTH-1", purpose=purpose)

    @pytest.mark.parametrize("consent_id", ["", "a b", "a\r\nX-Evil: 1", "授权"])
    def test_a_consent_id_is_printable_ascii(self, consent_id: str) -> None:
        with pytest.raises(ValidationError):
            RequestContext(consent_id=consent_id, purpose="dibao")


class OwnClient(PensionsConnector):
    """Sends through a client of its own (on the same transport): its requests say nothing."""

    async def fetch(  # type: ignore[override]
        self, household: object, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> object:
        async with httpx.AsyncClient(transport=client._transport) as own:
            return await super().fetch(household, config, own)  # type: ignore[arg-type]


async def test_the_conformance_check_names_a_connector_that_drops_the_headers() -> None:
    config = PensionsConnector.Config(base_url="http://sandbox.test/pensions")
    subject = code_subject(OwnClient(), config, "pensions")

    checks = {check.name: check for check in await run_checks(subject, SandboxPartner())}

    check = checks["every request carries the consent and purpose"]
    assert check.result == "fail"
    assert "never a client of your own" in check.detail
    assert checks["reads the partner's answers"].result == "pass"  # only the headers are wrong
