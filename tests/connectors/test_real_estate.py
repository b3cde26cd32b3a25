"""不动产登记 real-estate connector against the paginated JSON format of docs/partners.md."""

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import respx

from connectors.base import MalformedResponse
from connectors.real_estate import RealEstateConnector
from connectors.testing import ConnectorConformance, ConnectorTestScenario, PartnerSetup
from schemas.evidence import PropertyRecord
from tests.connectors.support import FOREIGN, A, B, fetch, household

SEARCH = "/registrations/search"


def item(owner: str, n: int = 1, usage: str = "residential", area: Any = 80.5) -> dict[str, Any]:
    return {
        "owner_id_number": owner,
        "certificate": f"云(2019)昆明市不动产权第{n:04d}号",
        "usage": usage,
        "area_m2": area,
        "region_code": "530102",
    }


def record(
    owner: str, n: int = 1, usage: str = "residential", area: str = "80.5"
) -> PropertyRecord:
    return PropertyRecord(
        id_number=owner,
        certificate=f"云(2019)昆明市不动产权第{n:04d}号",
        usage=usage,
        area_m2=Decimal(area),
        region_code="530102",
    )


def serve_pages(*contents: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    """A registry serving `contents` as consecutive pages, tokens "p2", "p3", …"""

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("page_token")
        index = 0 if token is None else int(token.removeprefix("p")) - 1
        following = f"p{index + 2}" if index + 1 < len(contents) else None
        return httpx.Response(200, json={"items": contents[index], "next_page_token": following})

    return answer


def pages(*contents: list[dict[str, Any]]) -> PartnerSetup:
    return lambda router: router.post(SEARCH).mock(side_effect=serve_pages(*contents))


def single(body: object) -> PartnerSetup:
    return lambda router: router.post(SEARCH).respond(200, json=body)


class TestRealEstate(ConnectorConformance):
    connector = RealEstateConnector()
    scenarios = (
        ConnectorTestScenario(
            id="one flat",
            household=household(A, B),
            partner=pages([item(A)]),
            expected_records=(record(A),),
            expected_calls=1,
        ),
        ConnectorTestScenario(
            id="three pages",
            household=household(A, B),
            partner=pages(
                [item(A, 1), item(A, 2, usage="commercial", area="120.25")],
                [item(B, 3, usage="land", area=1000)],
                [],
            ),
            expected_records=(
                record(A, 1),
                record(A, 2, usage="commercial", area="120.25"),
                record(B, 3, usage="land", area="1000"),
            ),
            expected_calls=3,
        ),
        ConnectorTestScenario(id="no record", household=household(A), partner=pages([])),
        ConnectorTestScenario(
            id="foreign owner on a later page",
            household=household(A),
            partner=pages([item(A)], [item(FOREIGN)]),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="unknown usage",
            household=household(A),
            partner=pages([item(A, usage="parking")]),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="negative area",
            household=household(A),
            partner=pages([item(A, area=-1)]),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="next_page_token missing",
            household=household(A),
            partner=single({"items": []}),
            expected_error=MalformedResponse,
        ),
    )

    omits_a_member = "only registrations are listed: an absent member has no record"
    duplicates_a_member = "registrations are listed, not members: one person may own several"

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/health").respond(200, json={"status": "up"})


class TestPagination:
    async def test_follows_tokens_repeating_the_same_body(self) -> None:
        setup = pages([item(A, 1)], [item(A, 2)], [item(B, 3)])
        run = await fetch(RealEstateConnector(), household(A, B), setup, page_size=1)
        assert run.error is None, run.error
        assert run.evidence is not None
        assert len(run.evidence.records) == 3
        requests = run.partner.requests
        assert [dict(r.url.params) for r in requests] == [
            {"page_size": "1"},
            {"page_size": "1", "page_token": "p2"},
            {"page_size": "1", "page_token": "p3"},
        ]
        assert [json.loads(r.content) for r in requests] == [{"id_numbers": [A, B]}] * 3
        assert all(r.method == "POST" for r in requests)

    async def test_default_page_size_is_the_partner_maximum(self) -> None:
        run = await fetch(RealEstateConnector(), household(A), pages([]))
        (request,) = run.partner.requests
        assert request.url.params["page_size"] == "20"

    async def test_repeated_token_is_malformed(self) -> None:
        run = await fetch(
            RealEstateConnector(),
            household(A),
            single({"items": [item(A)], "next_page_token": "again"}),
        )
        assert isinstance(run.error, MalformedResponse)
        assert str(run.error) == "pagination token repeats"
        assert run.attempts == 2

    async def test_endless_pages_stop_at_max_pages(self) -> None:
        counter = iter(range(1000))

        def endless(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"items": [], "next_page_token": f"t{next(counter)}"})

        run = await fetch(
            RealEstateConnector(),
            household(A),
            lambda router: router.post(SEARCH).mock(side_effect=endless),
            max_pages=5,
        )
        assert isinstance(run.error, MalformedResponse)
        assert "more than 5 pages" in str(run.error)
        assert run.attempts == 5

    async def test_a_failing_page_is_retried_alone(self) -> None:
        tokens: list[str | None] = []
        serve = serve_pages([item(A, 1)], [item(A, 2)], [item(A, 3)])

        def second_page_fails_once(request: httpx.Request) -> httpx.Response:
            tokens.append(request.url.params.get("page_token"))
            if tokens == [None, "p2"]:
                return httpx.Response(502)
            return serve(request)

        run = await fetch(
            RealEstateConnector(),
            household(A),
            lambda router: router.post(SEARCH).mock(side_effect=second_page_fails_once),
        )
        assert run.error is None, run.error
        assert tokens == [None, "p2", "p2", "p3"]
        assert run.attempts == 4

    async def test_area_keeps_its_exact_decimal(self) -> None:
        content = (
            b'{"items": [{"owner_id_number": "' + A.encode() + b'", "certificate": "c1",'
            b' "usage": "residential", "area_m2": 80.10, "region_code": "530102"}],'
            b' "next_page_token": null}'
        )
        run = await fetch(
            RealEstateConnector(),
            household(A),
            lambda router: router.post(SEARCH).respond(200, content=content),
        )
        assert run.evidence is not None
        (found,) = run.evidence.records
        assert isinstance(found, PropertyRecord)
        assert str(found.area_m2) == "80.10"
