"""OAuth 2.0 client credentials, error rules and rate limits of declarative connectors, over
real HTTP against the sandbox tax agency (its token endpoint included)."""

import json
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from connectors.base import (
    ConnectorConfig,
    MalformedResponse,
    PartnerRejected,
    PartnerUnavailable,
    fetch_evidence,
)
from connectors.declarative import build_connector, validate_spec
from connectors.declarative.connector import CONFIG_HAS_RATE
from connectors.http import PartnerClient
from sandbox.tokens import TOKEN_LIFE_S
from schemas.evidence import HouseholdQuery, MemberQuery, RequestContext
from tests.conftest import CLIENT_TLS, ClientFactory, LiveService
from tests.connectors.declarative.specs import example
from tests.factories import make_id_number

CLIENT_ID_ENV = "HEDUI_SECRET_TEST_TAX_CLIENT_ID"
CLIENT_SECRET_ENV = "HEDUI_SECRET_TEST_TAX_CLIENT_SECRET"


@pytest.fixture(autouse=True)
def _client_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIENT_ID_ENV, "hedui-sandbox")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "sandbox-secret")


@pytest.fixture
async def plain(live_service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live_service.base_url, timeout=30, verify=CLIENT_TLS
    ) as client:
        yield client


def _oauth_spec(live: LiveService, **changes: Any) -> dict[str, Any]:
    spec = example("tax", f"{live.base_url}/sandbox")
    spec["auth"] = {
        "type": "oauth2_client_credentials",
        "token_url": f"{live.base_url}/sandbox/tax/oauth/token",
        "client_id": {"env": CLIENT_ID_ENV},
        "client_secret": {"env": CLIENT_SECRET_ENV},
        "scope": "income.read",
    }
    spec.update(changes)
    return spec


def _household(*id_numbers: str) -> HouseholdQuery:
    return HouseholdQuery(
        region_code="530102",
        as_of=date(2026, 11, 20),
        members=tuple(MemberQuery(id_number=id_number) for id_number in id_numbers),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )


async def _fetch(spec: dict[str, Any], household: HouseholdQuery) -> tuple[Any, int]:
    connector = build_connector(validate_spec(spec), "1")
    return await _fetch_with(connector, household)


async def _fetch_with(connector: Any, household: HouseholdQuery) -> tuple[Any, int]:
    config: ConnectorConfig = connector.default_config()
    async with PartnerClient(context=household.context) as client:
        return await fetch_evidence(connector, household, config, client), client.requests_sent


async def _issued(plain: httpx.AsyncClient) -> int:
    issued: int = (await plain.get("/sandbox/tax/oauth/tokens")).json()["issued"]
    return issued


class TestOAuth2ClientCredentials:
    async def test_the_token_is_fetched_once_then_reused(
        self, live_service: LiveService, plain: httpx.AsyncClient
    ) -> None:
        connector = build_connector(validate_spec(_oauth_spec(live_service)), "1")
        before = await _issued(plain)

        first, _ = await _fetch_with(connector, _household(make_id_number()))
        second, attempts = await _fetch_with(connector, _household(make_id_number()))

        assert len(first.answered) == len(second.answered) == 1
        assert await _issued(plain) == before + 1
        assert attempts == 1  # the cached token: no token request

    async def test_a_refused_token_is_fetched_anew_once(
        self, live_service: LiveService, plain: httpx.AsyncClient
    ) -> None:
        connector = build_connector(validate_spec(_oauth_spec(live_service)), "1")
        await _fetch_with(connector, _household(make_id_number()))
        before = await _issued(plain)
        await plain.delete("/sandbox/tax/oauth/tokens")  # the partner rotates its tokens

        evidence, attempts = await _fetch_with(connector, _household(make_id_number()))

        assert len(evidence.answered) == 1
        assert attempts == 3  # refused, new token, asked again
        assert await _issued(plain) == before + 1

    async def test_check_carries_the_token(self, live_service: LiveService) -> None:
        connector = build_connector(validate_spec(_oauth_spec(live_service)), "1")
        async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
            result = await connector.check(connector.default_config(), client)
        assert result.ok, result.detail

    async def test_wrong_client_credentials_are_a_rejection(
        self, live_service: LiveService, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(CLIENT_SECRET_ENV, "not-the-secret")

        with pytest.raises(PartnerRejected, match="token endpoint refused") as caught:
            await _fetch(_oauth_spec(live_service), _household(make_id_number()))

        assert "not-the-secret" not in str(caught.value)

    async def test_a_test_read_over_the_api_masks_every_credential(
        self, api_client: ClientFactory, live_service: LiveService
    ) -> None:
        integrator = await api_client(role="integrator", region="00")
        created = await integrator.post(
            "/v1/connectors", json=_oauth_spec(live_service, name="tax_oauth")
        )
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["auth"]["client_secret"] == {"env": CLIENT_SECRET_ENV}

        tested = await integrator.post(
            "/v1/connectors/tax_oauth/test",
            json={"region_code": "530102", "members": [{"id_number": make_id_number()}]},
        )

        assert tested.status_code == 200, tested.text
        result = tested.json()
        assert result["ok"] is True, result
        token_call, query = result["exchanges"]
        assert token_call["url"].endswith("/sandbox/tax/oauth/token")
        assert token_call["request_headers"]["authorization"] == "***"
        assert query["request_headers"]["authorization"] == "***"
        assert token_call["request_body"] == "grant_type=client_credentials&scope=income.read"
        assert json.loads(token_call["response_body"]) == {
            "access_token": "***",  # the token issued, as its Authorization header is
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFE_S,
        }
        assert "sandbox-secret" not in tested.text

    async def test_a_secret_sent_in_the_query_is_masked_in_every_form(
        self,
        api_client: ClientFactory,
        live_service: LiveService,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        secret = "k+ey/=:1 密"
        monkeypatch.setenv("HEDUI_SECRET_TEST_QUERY_KEY", secret)
        spec = example("tax", f"{live_service.base_url}/sandbox")
        spec["name"] = "tax_query_key"
        spec["auth"] = {
            "type": "api_key",
            "in": "query",
            "name": "k",
            "secret": {"env": "HEDUI_SECRET_TEST_QUERY_KEY"},
        }
        integrator = await api_client(role="integrator", region="00")
        assert (await integrator.post("/v1/connectors", json=spec)).status_code == 201

        tested = await integrator.post(
            "/v1/connectors/tax_query_key/test",
            json={"region_code": "530102", "members": [{"id_number": make_id_number()}]},
        )

        assert tested.status_code == 200, tested.text
        (query,) = tested.json()["exchanges"]
        assert "k=***" in query["url"]
        for form in (secret, quote(secret, safe=""), quote_plus(secret), quote(secret)):
            assert form not in tested.text

    async def test_the_token_request_is_told_no_consent_the_query_is(
        self, api_client: ClientFactory, live_service: LiveService
    ) -> None:
        """A token serves the fetches of many households: it is about nobody."""
        integrator = await api_client(role="integrator", region="00")
        created = await integrator.post(
            "/v1/connectors", json=_oauth_spec(live_service, name="tax_oauth_consent")
        )
        assert created.status_code == 201, created.text

        tested = await integrator.post(
            "/v1/connectors/tax_oauth_consent/test",
            json={
                "region_code": "530102",
                "members": [{"id_number": make_id_number()}],
                "consent_document_id": "AUTH-7-TEST",
            },
        )

        assert tested.status_code == 200, tested.text
        token_call, query = tested.json()["exchanges"]
        assert "x-hedui-consent-id" not in token_call["request_headers"]
        assert "x-hedui-purpose" not in token_call["request_headers"]
        assert query["request_headers"]["x-hedui-consent-id"] == "AUTH-7-TEST"
        assert query["request_headers"]["x-hedui-purpose"] == "connector_test"

    async def test_a_token_url_outside_the_allow_list_is_refused(
        self, live_service: LiveService
    ) -> None:
        spec = _oauth_spec(live_service)
        spec["auth"]["token_url"] = "https://auth.elsewhere.example/token"
        with pytest.raises(ValueError, match="/auth/token_url"):
            validate_spec(spec)


class TestErrorRules:
    async def test_a_status_rule_makes_a_partner_error_that_is_not_retried(
        self, live_service: LiveService, plain: httpx.AsyncClient
    ) -> None:
        await plain.put("/sandbox/faults/tax", json={"mode": "error"})
        spec = example("tax", f"{live_service.base_url}/sandbox")
        spec["errors"] = [{"status": [500, 503], "action": "partner_error"}]

        with pytest.raises(MalformedResponse, match=r"partner reported an error \(errors/0\)"):
            await _fetch(spec, _household(make_id_number()))

    async def test_a_not_found_rule_answers_for_every_member(
        self, live_service: LiveService
    ) -> None:
        spec = example("tax", f"{live_service.base_url}/sandbox")
        spec["request"]["path"] = "/income/nobody-here"  # the sandbox answers 404
        spec["errors"] = [{"status": [404], "action": "not_found"}]
        members = (make_id_number(), make_id_number())

        evidence, attempts = await _fetch(spec, _household(*members))

        assert evidence.records == []
        assert sorted(evidence.answered) == sorted(members)
        assert attempts == 1

    async def test_a_body_rule_on_a_success_retries(self, live_service: LiveService) -> None:
        spec = example("tax", f"{live_service.base_url}/sandbox")
        spec["limits"] = {"max_attempts": 3}
        spec["errors"] = [{"when": "retCode == '000000'", "action": "retry"}]

        with pytest.raises(PartnerUnavailable, match=r"partner asked for a retry \(errors/0\)"):
            await _fetch(spec, _household(make_id_number()))

    async def test_a_body_rule_on_an_error_status_reads_the_partner_code(
        self, live_service: LiveService, plain: httpx.AsyncClient
    ) -> None:
        await plain.put("/sandbox/faults/tax", json={"mode": "error"})
        spec = example("tax", f"{live_service.base_url}/sandbox")
        spec["errors"] = [
            {"when": "starts_with(retCode, '4')", "action": "retry"},
            {"when": "starts_with(retCode, '5')", "action": "partner_error"},
        ]

        with pytest.raises(MalformedResponse, match=r"partner reported an error \(errors/1\)"):
            await _fetch(spec, _household(make_id_number()))

    async def test_an_unavailable_partner_is_never_no_record_whatever_a_rule_says(
        self, live_service: LiveService, plain: httpx.AsyncClient
    ) -> None:
        # A body rule matches an answer of any status: the partner's outage (500 here,
        # with a body the rule matches) stays a failed source.
        await plain.put("/sandbox/faults/tax", json={"mode": "error"})
        spec = example("tax", f"{live_service.base_url}/sandbox")
        spec["errors"] = [{"when": "starts_with(retCode, '5')", "action": "not_found"}]

        with pytest.raises(PartnerUnavailable):
            await _fetch(spec, _household(make_id_number()))


class TestRateLimit:
    async def test_requests_are_spaced_by_the_rate(self, live_service: LiveService) -> None:
        if CONFIG_HAS_RATE:
            pytest.skip("the rate is held where every connector's calls are made")
        spec = example("tax", f"{live_service.base_url}/sandbox")
        spec["mode"]["max_items"] = 1
        spec["limits"] = {"rate_per_s": 10}
        members = [make_id_number() for _ in range(4)]

        started = time.monotonic()
        evidence, attempts = await _fetch(spec, _household(*members))

        assert attempts == 4
        assert len(evidence.answered) == 4
        # Four requests at 10 a second: the last leaves at least 0.3 s after the first.
        assert time.monotonic() - started >= 0.3

    def test_the_rate_and_concurrency_reach_the_config(self) -> None:
        spec = example("tax", "http://127.0.0.1:9/sandbox")
        spec["limits"] = {"rate_per_s": 5, "max_concurrency": 4}
        connector = build_connector(validate_spec(spec), "1")
        config = connector.default_config()
        assert config.max_concurrency == 4
        if CONFIG_HAS_RATE:
            assert getattr(config, "rate_per_s", None) == 5
