"""The rules: small pure functions from household facts and parameters to findings.

`RULES` fixes the order findings appear in (within a rule: member order, then source name,
then stored record order), so the report reads the same on every run.
"""

from collections.abc import Callable

from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding
from service.policy.rules.assets import (
    check_financial_assets,
    check_housing_fund_balance,
    check_other_assets,
)
from service.policy.rules.business import check_business
from service.policy.rules.completeness import check_sources
from service.policy.rules.income import check_declared_income_gap, check_income
from service.policy.rules.payroll import check_public_payroll
from service.policy.rules.real_estate import check_real_estate
from service.policy.rules.relatives import check_near_relatives
from service.policy.rules.social_insurance import check_social_insurance
from service.policy.rules.standard import check_placeholder_standard
from service.policy.rules.tax import check_taxed_income
from service.policy.rules.tekun import check_tekun_working_age, check_tekun_working_member
from service.policy.rules.vehicles import check_vehicles

Rule = Callable[[HouseholdFacts, PolicyParameters], list[RuleFinding]]

RULES: tuple[Rule, ...] = (
    check_placeholder_standard,
    check_sources,
    check_income,
    check_declared_income_gap,
    check_financial_assets,
    check_housing_fund_balance,
    check_other_assets,
    check_vehicles,
    check_real_estate,
    check_public_payroll,
    check_business,
    check_taxed_income,
    check_social_insurance,
    check_tekun_working_member,
    check_tekun_working_age,
    check_near_relatives,
)


def run_rules(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    return [finding for rule in RULES for finding in rule(facts, policy)]
