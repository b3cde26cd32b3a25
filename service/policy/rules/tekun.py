"""Tekun (特困) simplified: the destitute have no work income.

hedui's simplification: a household qualifies for tekun only if no member shows signs of
earning, i.e. a public payroll record, pension contributions being paid, or an active
housing-fund account (deposits are paid only while employed). Any such member is
disqualifying; the income test against the tekun standard is the income rule's job.
"""

from schemas.evidence import HousingFundRecord, PayrollRecord, PensionRecord, Record
from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def is_work_evidence(record: Record) -> bool:
    if isinstance(record, PensionRecord):
        return record.status == "contributing"
    if isinstance(record, HousingFundRecord):
        return record.status == "active"
    return isinstance(record, PayrollRecord)


def check_tekun_working_member(
    facts: HouseholdFacts, policy: PolicyParameters
) -> list[RuleFinding]:
    if policy.program != "tekun":
        return []
    findings = []
    for member in range(facts.size):
        items = [
            item
            for item in facts.records
            if item.member == member and is_work_evidence(item.record)
        ]
        if items:
            findings.append(
                RuleFinding(
                    "tekun_working_member",
                    "disqualifying",
                    {
                        "member": facts.masked(member),
                        "sources": ", ".join(sorted({item.source for item in items})),
                    },
                    tuple(facts.evidence(item) for item in items),
                )
            )
    return findings
