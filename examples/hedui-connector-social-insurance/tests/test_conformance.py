"""The plugin held to hedui's connector conformance suite (`pip install .[test]`)."""

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import respx
from hedui_connector_social_insurance import SocialInsuranceConnector

from connectors.base import MalformedResponse
from connectors.testing import ConnectorConformance, ConnectorTestScenario, PartnerSetup
from schemas.evidence import HouseholdQuery, MemberQuery, RequestContext, SocialInsuranceRecord

A = "11010519491231002X"
B = "440524188001010014"
C = "530102199001011231"

Rows = dict[str, list[dict[str, str]]]


def household(*id_numbers: str) -> HouseholdQuery:
    return HouseholdQuery(
        region_code="530102",
        as_of=date(2026, 11, 20),
        members=tuple(MemberQuery(id_number=id_number) for id_number in id_numbers),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )


def row(employer: str = "县人民医院", status: str = "1", base: str = "4500.00") -> dict[str, str]:
    return {"aab004": employer, "aac008": status, "aic020": base}


def partner(rows: Rows, *, echo: Callable[[str], str] = lambda asked: asked) -> PartnerSetup:
    """The agency: one answer per form-encoded query, with the rows held for that person."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked = parse_qs(request.content.decode())["aac002"][0]
        data = {"aac002": echo(asked), "list": rows.get(asked, [])}
        return httpx.Response(200, json={"code": 0, "data": data})

    return lambda router: router.post("/query").mock(side_effect=answer)


class TestSocialInsurance(ConnectorConformance):
    connector = SocialInsuranceConnector()
    scenarios = (
        ConnectorTestScenario(
            id="one member contributing",
            household=household(A, B),
            partner=partner({B: [row()]}),
            expected_records=(
                SocialInsuranceRecord(
                    id_number=B,
                    employer="县人民医院",
                    status="contributing",
                    monthly_base=Decimal("4500.00"),
                ),
            ),
            expected_calls=2,
        ),
        ConnectorTestScenario(
            id="two employers and a suspended one",
            household=household(A),
            partner=partner({A: [row(), row("某某公司", "2", "3000")]}),
            expected_records=(
                SocialInsuranceRecord(
                    id_number=A,
                    employer="县人民医院",
                    status="contributing",
                    monthly_base=Decimal("4500.00"),
                ),
                SocialInsuranceRecord(
                    id_number=A,
                    employer="某某公司",
                    status="suspended",
                    monthly_base=Decimal("3000"),
                ),
            ),
        ),
        ConnectorTestScenario(
            id="nobody insured", household=household(A, B, C), partner=partner({})
        ),
        ConnectorTestScenario(
            id="answer about someone else",
            household=household(A),
            partner=partner({}, echo=lambda _: C),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="unknown status code",
            household=household(A),
            partner=partner({A: [row(status="9")]}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="base not a number",
            household=household(A),
            partner=partner({A: [row(base="面议")]}),
            expected_error=MalformedResponse,
        ),
    )

    omits_a_member = "one member per call: every call answers the member it asked about"
    duplicates_a_member = "one member per call: an answer cannot cover a member twice"

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/ping").respond(200, json={"code": 0, "message": "ok"})
