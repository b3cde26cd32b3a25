"""Declarative connectors against the sandbox agencies over real HTTP."""

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import ClassVar

import httpx
import pytest

from connectors.base import MalformedResponse, PartnerUnavailable, ResponseTooLarge, fetch_evidence
from connectors.declarative import DeclarativeConnector, build_connector, validate_spec
from sandbox import create_sandbox_app
from schemas.evidence import BusinessRecord, TaxedIncomeRecord
from tests.conftest import CLIENT_TLS, serving
from tests.connectors.declarative.specs import example
from tests.connectors.support import A, B, household
from tests.factories import make_id_number


@pytest.fixture(scope="module")
async def sandbox_url() -> AsyncIterator[str]:
    async with serving(create_sandbox_app(None, synthetic=False), lifespan="off") as url:
        yield url


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
        await client.delete(f"{sandbox_url}/people")
        await client.delete(f"{sandbox_url}/faults")
        await client.delete(f"{sandbox_url}/queries")
        yield client


def _connector(name: str, sandbox_url: str, **changes: object) -> DeclarativeConnector:
    spec = example(name, sandbox_url)
    spec.update(changes)
    return build_connector(validate_spec(spec), "1")


async def _seed(client: httpx.AsyncClient, url: str, id_number: str, **sections: object) -> None:
    response = await client.post(f"{url}/people", json={"id_number": id_number, **sections})
    assert response.status_code == 200, response.text


class TestTax:
    async def test_maps_fen_to_yuan_and_accounts_for_everyone(
        self, client: httpx.AsyncClient, sandbox_url: str
    ) -> None:
        await _seed(client, sandbox_url, A, tax={"year": 2025, "annual_taxable_income": "48000.50"})
        await _seed(client, sandbox_url, B)
        connector = _connector("tax", sandbox_url)

        evidence = await fetch_evidence(
            connector, household(A, B), connector.default_config(), client
        )

        assert evidence.records == [
            TaxedIncomeRecord(id_number=A, year=2025, annual_amount=Decimal("48000.50"))
        ]
        assert sorted(evidence.answered) == sorted([A, B])

    async def test_households_over_the_batch_limit_go_in_chunks(
        self, client: httpx.AsyncClient, sandbox_url: str
    ) -> None:
        members = [make_id_number(region="530102", birth="19800101", sequence=n) for n in range(25)]
        connector = _connector("tax", sandbox_url)

        evidence = await fetch_evidence(
            connector, household(*members), connector.default_config(), client
        )

        assert len(evidence.answered) == 25
        assert (await client.get(f"{sandbox_url}/queries")).json()["tax"] == 2

    async def test_garbage_is_malformed(self, client: httpx.AsyncClient, sandbox_url: str) -> None:
        await client.put(f"{sandbox_url}/faults/tax", json={"mode": "garbage"})
        connector = _connector("tax", sandbox_url)

        with pytest.raises(MalformedResponse):
            await fetch_evidence(connector, household(A), connector.default_config(), client)

    async def test_a_partner_down_is_unavailable(
        self, client: httpx.AsyncClient, sandbox_url: str
    ) -> None:
        await client.put(f"{sandbox_url}/faults/tax", json={"mode": "down"})
        connector = _connector("tax", sandbox_url)

        with pytest.raises(PartnerUnavailable):
            await fetch_evidence(connector, household(A), connector.default_config(), client)
        assert not (await connector.check(connector.default_config(), client)).ok

    async def test_check(self, client: httpx.AsyncClient, sandbox_url: str) -> None:
        connector = _connector("tax", sandbox_url)

        result = await connector.check(connector.default_config(), client)

        assert result.ok, result.detail


class TestBusiness:
    ROLE: ClassVar[dict[str, object]] = {
        "company": "云南某某商贸有限公司",
        "credit_code": "91530102MA6K123456",
        "role": "shareholder",
        "registered_capital": 500000,
        "share_ratio": "0.35",
    }

    async def test_follows_pages_to_the_last(
        self, client: httpx.AsyncClient, sandbox_url: str
    ) -> None:
        await _seed(client, sandbox_url, A, business=[self.ROLE] * 3)
        await _seed(
            client,
            sandbox_url,
            B,
            business=[{**self.ROLE, "role": "legal_representative", "share_ratio": None}],
        )
        spec = example("business", sandbox_url)
        spec["pagination"]["size"] = 2
        connector = build_connector(validate_spec(spec), "1")

        evidence = await fetch_evidence(
            connector, household(A, B), connector.default_config(), client
        )

        assert [
            (r.id_number, r.role) for r in evidence.records if isinstance(r, BusinessRecord)
        ] == [
            (A, "shareholder"),
            (A, "shareholder"),
            (A, "shareholder"),
            (B, "legal_representative"),
        ]
        assert evidence.records[0] == BusinessRecord(
            id_number=A,
            company="云南某某商贸有限公司",
            credit_code="91530102MA6K123456",
            role="shareholder",
            registered_capital=Decimal("500000.00"),
            share_ratio=Decimal("0.35"),
        )
        assert (await client.get(f"{sandbox_url}/queries")).json()["business"] == 2

    async def test_more_pages_than_the_cap_is_too_large(
        self, client: httpx.AsyncClient, sandbox_url: str
    ) -> None:
        await _seed(client, sandbox_url, A, business=[self.ROLE] * 5)
        spec = example("business", sandbox_url)
        spec["pagination"].update(size=1, max_pages=3)
        connector = build_connector(validate_spec(spec), "1")

        with pytest.raises(ResponseTooLarge, match="more than 3 pages"):
            await fetch_evidence(connector, household(A), connector.default_config(), client)

    async def test_nobody_registered_is_no_record(
        self, client: httpx.AsyncClient, sandbox_url: str
    ) -> None:
        await _seed(client, sandbox_url, A)
        connector = _connector("business", sandbox_url)

        evidence = await fetch_evidence(connector, household(A), connector.default_config(), client)

        assert (evidence.records, evidence.answered) == ([], [A])
