"""Real estate: more dwellings than allowed, or property that is not a dwelling.

Residential properties are counted over the whole household: more than `max_dwellings` is
disqualifying. Commercial property and land are each a warning needing review: whether
they yield income (a shop let out) or are the family's farmland is for a person to judge.
"""

from schemas.evidence import PropertyRecord
from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def check_real_estate(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    properties = list(facts.of_type(PropertyRecord))
    dwellings = [item for item, record in properties if record.usage == "residential"]
    findings = []
    if len(dwellings) > policy.max_dwellings:
        findings.append(
            RuleFinding(
                "dwellings_over_limit",
                "disqualifying",
                {"count": str(len(dwellings)), "limit": str(policy.max_dwellings)},
                tuple(facts.evidence(item) for item in dwellings),
            )
        )
    findings.extend(
        RuleFinding(
            "non_residential_property",
            "warning",
            {
                "member": facts.masked(item.member),
                "usage": record.usage,
                "area_m2": str(record.area_m2),
            },
            (facts.evidence(item),),
        )
        for item, record in properties
        if record.usage != "residential"
    )
    return findings
