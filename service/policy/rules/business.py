"""Business registration (工商): members who run or own part of a company.

A member registered as a company's legal representative, or holding a stake worth at least
`business_stake_threshold` (registered capital × share), may draw business income no
partner reports as income: the household needs review. A smaller stake is information.
"""

from decimal import Decimal

from schemas.evidence import BusinessRecord
from schemas.money import format_money
from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def stake(record: BusinessRecord) -> Decimal:
    """What the member's part of the company is worth by registered capital."""
    if record.role == "shareholder" and record.share_ratio is not None:
        return record.registered_capital * record.share_ratio
    return record.registered_capital


def check_business(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    threshold = policy.business_stake_threshold
    findings = []
    for item, record in facts.of_type(BusinessRecord):
        args = {
            "member": facts.masked(item.member),
            "company": record.company,
            "capital": format_money(record.registered_capital),
            "stake": format_money(stake(record)),
            "threshold": format_money(threshold),
        }
        if record.role == "legal_representative":
            findings.append(
                RuleFinding(
                    "business_legal_representative", "warning", args, (facts.evidence(item),)
                )
            )
        elif stake(record) >= threshold:
            findings.append(
                RuleFinding("business_shareholder", "warning", args, (facts.evidence(item),))
            )
        else:
            findings.append(
                RuleFinding("business_minor_shareholder", "info", args, (facts.evidence(item),))
            )
    return findings
