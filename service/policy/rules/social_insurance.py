"""Social-insurance contributions (社保缴费): a member an employer pays contributions for.

The contribution base (缴费基数) is the monthly wage contributions are paid on, so it is
evidence of wages rather than income of its own: not added to the household's income (the
payroll and other sources report the money itself). A base above
`social_insurance_review_ratio` × the monthly standard means a wage above the household's
line on its own; the household needs review. Suspended contributions say nothing current.
"""

from schemas.evidence import SocialInsuranceRecord
from schemas.money import format_money
from schemas.policy import PolicyParameters
from schemas.report import Severity
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def check_social_insurance(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    limit = policy.monthly_standard * policy.social_insurance_review_ratio
    findings = []
    for item, record in facts.of_type(SocialInsuranceRecord):
        if record.status != "contributing":
            continue
        args = {
            "member": facts.masked(item.member),
            "employer": record.employer or "—",
            "base": format_money(record.monthly_base),
            "limit": format_money(limit),
        }
        over = record.monthly_base > limit
        code = "social_insurance_base_over_standard" if over else "social_insurance_contributing"
        severity: Severity = "warning" if over else "info"
        findings.append(RuleFinding(code, severity, args, (facts.evidence(item),)))
    return findings
