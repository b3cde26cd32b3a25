"""财政供养 public-payroll connector against the pinyin-keyed JSON format of docs/partners.md."""

import json
from decimal import Decimal

import respx

from connectors.base import MalformedResponse
from connectors.public_payroll import PublicPayrollConnector
from connectors.testing import ConnectorConformance, ConnectorTestScenario, PartnerSetup
from schemas.evidence import PayrollRecord
from tests.connectors.support import FOREIGN, A, B, fetch, household


def answer(body: object) -> PartnerSetup:
    return lambda router: router.post("/verify").respond(200, json=body)


def row(sfzh: str, gzdw: str = "某某局", yfgz: object = "4500.00") -> dict[str, object]:
    return {"sfzh": sfzh, "gzdw": gzdw, "yfgz": yfgz}


class TestPublicPayroll(ConnectorConformance):
    connector = PublicPayrollConnector()
    scenarios = (
        ConnectorTestScenario(
            id="one member on payroll",
            household=household(A, B),
            partner=answer({"flag": "1", "rows": [row(B)]}),
            expected_records=(
                PayrollRecord(id_number=B, employer="某某局", monthly_salary=Decimal("4500.00")),
            ),
            expected_calls=1,
        ),
        ConnectorTestScenario(
            id="both on payroll",
            household=household(A, B),
            partner=answer({"flag": "1", "rows": [row(A), row(B)]}),
            expected_records=(
                PayrollRecord(id_number=A, employer="某某局", monthly_salary=Decimal("4500.00")),
                PayrollRecord(id_number=B, employer="某某局", monthly_salary=Decimal("4500.00")),
            ),
        ),
        ConnectorTestScenario(
            id="nobody on payroll",
            household=household(A, B),
            partner=answer({"flag": "1", "rows": []}),
        ),
        ConnectorTestScenario(
            id="foreign ID number",
            household=household(A),
            partner=answer({"flag": "1", "rows": [row(FOREIGN)]}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="flag 0 with HTTP 200",
            household=household(A),
            partner=answer({"flag": "0", "errmsg": "系统繁忙"}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="salary not a number",
            household=household(A),
            partner=answer({"flag": "1", "rows": [row(A, yfgz="面议")]}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="salary with three decimals",
            household=household(A),
            partner=answer({"flag": "1", "rows": [row(A, yfgz="4500.001")]}),
            expected_error=MalformedResponse,
        ),
    )

    omits_a_member = "only people on payroll are listed: an absent member has no record"
    duplicates_a_member = (
        "rows are jobs on payroll, not answers per member: one person may hold two"
    )

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/ping").respond(200, json={"flag": "1"})


class TestWireFormat:
    async def test_whole_household_in_sfzh_list(self) -> None:
        run = await fetch(
            PublicPayrollConnector(), household(A, B), answer({"flag": "1", "rows": []})
        )
        (request,) = run.partner.requests
        assert json.loads(request.content) == {"sfzh_list": [A, B]}

    async def test_malformed_message_does_not_quote_values(self) -> None:
        run = await fetch(
            PublicPayrollConnector(),
            household(A),
            answer({"flag": "1", "rows": [{"sfzh": A, "gzdw": "某某局", "yfgz": f"{A}"}]}),
        )
        assert isinstance(run.error, MalformedResponse)
        assert str(run.error) == "unexpected body: rows.0.yfgz (decimal_parsing)"
