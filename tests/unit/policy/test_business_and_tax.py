"""Business registration and taxed income become findings with evidence."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.evidence import BusinessRecord, TaxedIncomeRecord
from schemas.identity import mask_id_number
from service.policy.messages import render
from service.policy.rules import run_rules
from service.policy.rules.business import check_business
from service.policy.rules.tax import check_taxed_income

from .builders import facts_of, household, member, person, policy

A = person(1)


def _role(role: str, capital: str, share: str | None = None) -> BusinessRecord:
    return BusinessRecord(
        id_number=A,
        company="某某商贸有限公司",
        role=role,  # type: ignore[arg-type]
        registered_capital=Decimal(capital),
        share_ratio=None if share is None else Decimal(share),
    )


class TestBusiness:
    def test_a_legal_representative_needs_review(self) -> None:
        inputs = household([member(A)], {"business": [_role("legal_representative", "100000")]})

        (finding,) = check_business(facts_of(inputs), policy())

        assert (finding.code, finding.severity) == ("business_legal_representative", "warning")
        assert finding.evidence[0].source == "business"
        assert finding.evidence[0].member == mask_id_number(A)
        assert "legal_representative" in finding.evidence[0].fact

    @pytest.mark.parametrize(
        ("capital", "share", "code", "severity"),
        [
            ("1000000", "0.05", "business_shareholder", "warning"),  # 50,000 = the default
            ("1000000", "0.0499", "business_minor_shareholder", "info"),
            ("30000", None, "business_minor_shareholder", "info"),
        ],
    )
    def test_a_stake_counts_from_the_threshold(
        self, capital: str, share: str | None, code: str, severity: str
    ) -> None:
        inputs = household([member(A)], {"business": [_role("shareholder", capital, share)]})

        (finding,) = check_business(facts_of(inputs), policy())

        assert (finding.code, finding.severity) == (code, severity)

    def test_the_threshold_comes_from_the_policy(self) -> None:
        inputs = household([member(A)], {"business": [_role("shareholder", "20000")]})
        parameters = policy(business_stake=Decimal("10000"))

        (finding,) = check_business(facts_of(inputs, parameters), parameters)

        assert finding.code == "business_shareholder"
        assert finding.args["threshold"] == "10000.00"

    def test_the_message_names_the_company(self) -> None:
        inputs = household([member(A)], {"business": [_role("legal_representative", "500000")]})

        (finding,) = check_business(facts_of(inputs), policy())

        assert "某某商贸有限公司" in render(finding, "zh").message
        assert "legal representative" in render(finding, "en").message


class TestTaxedIncome:
    def _taxed(self, annual: str) -> TaxedIncomeRecord:
        return TaxedIncomeRecord(id_number=A, year=2025, annual_amount=Decimal(annual))

    def test_above_the_standard_needs_review(self) -> None:
        inputs = household([member(A)], {"tax": [self._taxed("96000")]})

        (finding,) = check_taxed_income(facts_of(inputs), policy())

        assert (finding.code, finding.severity) == ("taxed_income_over_standard", "warning")
        assert finding.args["monthly"] == "8000.00"
        assert finding.evidence[0].source == "tax"

    def test_below_the_standard_is_information(self) -> None:
        inputs = household([member(A)], {"tax": [self._taxed("6000")]})

        (finding,) = check_taxed_income(facts_of(inputs), policy())

        assert (finding.code, finding.severity) == ("taxed_income", "info")

    def test_taxed_income_is_not_added_to_household_income(self) -> None:
        without = facts_of(household([member(A)]))
        taxed = facts_of(household([member(A)], {"tax": [self._taxed("96000")]}))

        assert taxed.monthly_income == without.monthly_income

    def test_every_rule_runs_them(self) -> None:
        inputs = household(
            [member(A)],
            {"tax": [self._taxed("96000")], "business": [_role("legal_representative", "1")]},
        )

        codes = {f.code for f in run_rules(facts_of(inputs), policy())}

        assert {"taxed_income_over_standard", "business_legal_representative"} <= codes

    @given(st.integers(min_value=0, max_value=10**9))
    def test_review_exactly_when_the_monthly_amount_exceeds_the_limit(self, fen: int) -> None:
        annual = Decimal(fen).scaleb(-2)
        parameters = policy()
        inputs = household([member(A)], {"tax": [self._taxed(str(annual))]})

        (finding,) = check_taxed_income(facts_of(inputs, parameters), parameters)

        over = annual / 12 > parameters.monthly_standard * parameters.taxed_income_review_ratio
        assert (finding.severity == "warning") is over
