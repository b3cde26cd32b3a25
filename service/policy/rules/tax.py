"""Individual income tax (个税): taxable income a member was taxed on.

Taxed income is the same money as the wages and pensions other sources report, so it is not
added to the household's income (that would count it twice). It is evidence: a member whose
taxed income, per month, exceeds `taxed_income_review_ratio` × the monthly standard earns more
than the household's line on their own, whatever else was found; the household needs review.
"""

from decimal import Decimal

from schemas.evidence import TaxedIncomeRecord
from schemas.money import format_money
from schemas.policy import PolicyParameters
from schemas.report import Severity
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding

MONTHS = Decimal(12)


def check_taxed_income(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    limit = policy.monthly_standard * policy.taxed_income_review_ratio
    findings = []
    for item, record in facts.of_type(TaxedIncomeRecord):
        monthly = record.annual_amount / MONTHS
        args = {
            "member": facts.masked(item.member),
            "year": str(record.year),
            "annual": format_money(record.annual_amount),
            "monthly": format_money(monthly),
            "limit": format_money(limit),
        }
        over = monthly > limit
        code = "taxed_income_over_standard" if over else "taxed_income"
        severity: Severity = "warning" if over else "info"
        findings.append(RuleFinding(code, severity, args, (facts.evidence(item),)))
    return findings
