"""Real estate: more dwellings than allowed, or property that is not a dwelling.

Residential properties are counted over the whole household: more than `max_dwellings` is
disqualifying. A property several members own is one property (`HouseholdFacts.properties`:
the registry answers per person). Commercial property and land are each a warning needing
review: whether they yield income (a shop let out) or are the family's farmland is for a
person to judge.
"""

from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def check_real_estate(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    properties = facts.properties()
    dwellings = [
        owners
        for owners in properties
        if any(record.usage == "residential" for _, record in owners)
    ]
    findings = []
    if len(dwellings) > policy.max_dwellings:
        findings.append(
            RuleFinding(
                "dwellings_over_limit",
                "disqualifying",
                {"count": str(len(dwellings)), "limit": str(policy.max_dwellings)},
                tuple(facts.evidence(item) for owners in dwellings for item, _ in owners),
            )
        )
    for owners in properties:
        others = [(item, record) for item, record in owners if record.usage != "residential"]
        if not others:
            continue
        record = others[0][1]
        findings.append(
            RuleFinding(
                "non_residential_property",
                "warning",
                {
                    "member": ", ".join(
                        dict.fromkeys(facts.masked(item.member) for item, _ in others)
                    ),
                    "usage": record.usage,
                    "area_m2": str(record.area_m2),
                },
                tuple(facts.evidence(item) for item, _ in others),
            )
        )
    return findings
