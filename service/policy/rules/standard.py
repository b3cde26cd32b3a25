"""The standard itself: a placeholder figure never decides a case on its own.

When the monthly standard comes from placeholder figures (the national defaults, for a
region without a standard of its own), the household goes to review: a person must check
it against the region's published standard.
"""

from schemas.money import format_money
from schemas.policy import PolicyParameters
from schemas.report import EvidenceRef
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding

POLICY = "policy"
"""Pseudo-source name for evidence taken from the policy parameters."""


def check_placeholder_standard(
    facts: HouseholdFacts, policy: PolicyParameters
) -> list[RuleFinding]:
    if not policy.standard_is_placeholder:
        return []
    standard = format_money(policy.monthly_standard)
    return [
        RuleFinding(
            "placeholder_standard",
            "warning",
            {"version": policy.version, "standard": standard},
            (
                EvidenceRef(
                    source=POLICY,
                    fact=f"version={policy.version} monthly_standard={standard} "
                    "standard_is_placeholder=true",
                ),
            ),
        )
    ]
