"""Social-insurance contributions (from the example plugin) become findings with evidence."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas.evidence import SocialInsuranceRecord
from service.policy.messages import render
from service.policy.rules.social_insurance import check_social_insurance

from .builders import facts_of, household, member, person, policy

A = person(1)


def _insured(base: str, status: str = "contributing") -> SocialInsuranceRecord:
    return SocialInsuranceRecord(
        id_number=A,
        employer="县人民医院",
        status=status,  # type: ignore[arg-type]
        monthly_base=Decimal(base),
    )


def test_a_base_above_the_standard_needs_review() -> None:
    inputs = household([member(A)], {"social_insurance": [_insured("9000")]})

    (finding,) = check_social_insurance(facts_of(inputs), policy())

    assert (finding.code, finding.severity) == ("social_insurance_base_over_standard", "warning")
    assert finding.evidence[0].source == "social_insurance"
    assert "9000.00" in render(finding, "en").message


def test_a_base_below_the_standard_is_information() -> None:
    inputs = household([member(A)], {"social_insurance": [_insured("100")]})

    (finding,) = check_social_insurance(facts_of(inputs), policy())

    assert (finding.code, finding.severity) == ("social_insurance_contributing", "info")


def test_suspended_contributions_say_nothing() -> None:
    inputs = household([member(A)], {"social_insurance": [_insured("9000", "suspended")]})

    assert check_social_insurance(facts_of(inputs), policy()) == []


def test_the_ratio_is_a_policy_key() -> None:
    inputs = household([member(A)], {"social_insurance": [_insured("9000")]})

    (finding,) = check_social_insurance(
        facts_of(inputs), policy(social_insurance_base_ratio=Decimal(100))
    )

    assert finding.code == "social_insurance_contributing"


@given(st.decimals(min_value=0, max_value=100_000, places=2))
def test_review_exactly_when_the_base_is_above_the_limit(base: Decimal) -> None:
    parameters = policy()
    inputs = household([member(A)], {"social_insurance": [_insured(str(base))]})

    (finding,) = check_social_insurance(facts_of(inputs, parameters), parameters)

    over = base > parameters.monthly_standard * parameters.social_insurance_review_ratio
    assert (finding.severity == "warning") == over
