"""Public payroll (财政供养人员): people paid from public budgets.

A member on public payroll makes the household ineligible for dibao (domain notes; a
documented exception is for the approver to grant). For tekun and linshi it is a warning
the approver must review. The salary itself counts as income (see facts).
"""

from schemas.evidence import PayrollRecord
from schemas.money import format_money
from schemas.policy import PolicyParameters
from schemas.report import Severity
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def check_public_payroll(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    severity: Severity = "disqualifying" if policy.program == "dibao" else "warning"
    return [
        RuleFinding(
            "public_payroll_member",
            severity,
            {
                "member": facts.masked(item.member),
                "employer": record.employer,
                "amount": format_money(record.monthly_salary),
            },
            (facts.evidence(item),),
        )
        for item, record in facts.of_type(PayrollRecord)
    ]
