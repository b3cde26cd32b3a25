"""住房公积金 housing-fund connector: form-encoded, amounts in fen (docs/partners.md)."""

import asyncio
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import respx
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import MalformedResponse
from connectors.housing_fund import HousingFundConnector, fen_to_yuan
from connectors.testing import ConnectorConformance, ConnectorTestScenario, PartnerSetup
from schemas.evidence import HousingFundRecord
from tests.connectors.support import A, B, fetch, household

NO_ACCOUNT = {"ret": "0404", "msg": "no account", "data": None}


def account(zhzt: str = "01", ye: object = 2000000, yjce: object = 60000) -> dict[str, object]:
    return {"ret": "0000", "msg": "success", "data": {"zhzt": zhzt, "ye": ye, "yjce": yjce}}


def partner(answers: dict[str, dict[str, object]]) -> PartnerSetup:
    """A housing-fund centre answering by the form field `zjhm`; unknown people have no account."""

    def answer(request: httpx.Request) -> httpx.Response:
        (id_number,) = parse_qs(request.content.decode())["zjhm"]
        return httpx.Response(200, json=answers.get(id_number, NO_ACCOUNT))

    return lambda router: router.post("/account/query").mock(side_effect=answer)


class TestHousingFund(ConnectorConformance):
    connector = HousingFundConnector()
    scenarios = (
        ConnectorTestScenario(
            id="active account",
            household=household(A),
            partner=partner({A: account()}),
            expected_records=(
                HousingFundRecord(
                    id_number=A,
                    status="active",
                    balance=Decimal("20000.00"),
                    monthly_deposit=Decimal("600.00"),
                ),
            ),
            expected_calls=1,
        ),
        ConnectorTestScenario(
            id="closed account and no account",
            household=household(A, B),
            partner=partner({B: account(zhzt="02", ye=12345, yjce=0)}),
            expected_records=(
                HousingFundRecord(
                    id_number=B,
                    status="closed",
                    balance=Decimal("123.45"),
                    monthly_deposit=Decimal("0.00"),
                ),
            ),
            expected_calls=2,
        ),
        ConnectorTestScenario(
            id="an account each",
            household=household(A, B),
            partner=partner({A: account(), B: account(ye=0, yjce=0)}),
            expected_records=(
                HousingFundRecord(
                    id_number=A,
                    status="active",
                    balance=Decimal("20000.00"),
                    monthly_deposit=Decimal("600.00"),
                ),
                HousingFundRecord(
                    id_number=B,
                    status="active",
                    balance=Decimal("0.00"),
                    monthly_deposit=Decimal("0.00"),
                ),
            ),
        ),
        ConnectorTestScenario(id="no account", household=household(A, B), partner=partner({})),
        ConnectorTestScenario(
            id="fen with a fraction",
            household=household(A),
            partner=partner({A: account(ye=2000000.5)}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="fen as a string",
            household=household(A),
            partner=partner({A: account(ye="2000000")}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="unknown account status",
            household=household(A),
            partner=partner({A: account(zhzt="03")}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="success without data",
            household=household(A),
            partner=partner({A: {"ret": "0000", "msg": "success", "data": None}}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="no account, with an account's data",
            household=household(A),
            partner=partner({A: {**NO_ACCOUNT, "data": account()["data"]}}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="unknown ret code",
            household=household(A),
            partner=partner({A: {"ret": "1234", "msg": "?"}}),
            expected_error=MalformedResponse,
        ),
    )

    omits_a_member = "one call per member, and its answer is about that member alone"
    duplicates_a_member = omits_a_member

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/status").respond(200, json={"ret": "0000"})


class TestFenConversion:
    def test_two_million_fen_is_twenty_thousand_yuan(self) -> None:
        assert fen_to_yuan(2000000) == Decimal("20000.00")
        assert str(fen_to_yuan(2000000)) == "20000.00"

    @given(st.integers(min_value=0, max_value=10**15))
    def test_exact_for_any_amount(self, fen: int) -> None:
        yuan = fen_to_yuan(fen)
        assert yuan * 100 == fen
        assert yuan.as_tuple().exponent == -2


class TestQueries:
    async def test_one_form_encoded_call_per_member(self) -> None:
        run = await fetch(HousingFundConnector(), household(A, B), partner({}))
        assert run.error is None, run.error
        assert sorted(r.content for r in run.partner.requests) == sorted(
            f"zjhm={id_number}".encode() for id_number in (A, B)
        )
        assert {r.headers["Content-Type"] for r in run.partner.requests} == {
            "application/x-www-form-urlencoded"
        }

    async def test_members_are_asked_concurrently(self) -> None:
        both_arrived = asyncio.Event()
        arrived = 0

        async def answer(request: httpx.Request) -> httpx.Response:
            nonlocal arrived
            arrived += 1
            if arrived == 2:
                both_arrived.set()
            await asyncio.wait_for(both_arrived.wait(), timeout=1)
            return httpx.Response(200, json=NO_ACCOUNT)

        run = await fetch(
            HousingFundConnector(),
            household(A, B),
            lambda router: router.post("/account/query").mock(side_effect=answer),
        )
        assert run.error is None, run.error

    async def test_one_failing_member_fails_the_household(self) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            if f"zjhm={B}".encode() == request.content:
                return httpx.Response(500, json={"ret": "9999", "msg": f"{B} failed"})
            return httpx.Response(200, json=account())

        run = await fetch(
            HousingFundConnector(),
            household(A, B),
            lambda router: router.post("/account/query").mock(side_effect=answer),
        )
        assert str(run.error) == "HTTP 500 (partner code 9999)"
        assert run.attempts == len(run.partner.requests)
