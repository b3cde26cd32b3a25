"""Tekun (特困): the destitute have no work income and no supporter able to work.

hedui's simplification: a household qualifies for tekun only if no member shows signs of
paid work, because a working member has an income and is, in a household, a supporter. The
signs are:
- a public payroll record (财政供养人员: a salaried public job);
- a wage or salary income record from any source (a salaried member);
- an active housing-fund account (deposits are paid only while employed).
Any such member is disqualifying (`tekun_working_member`).

A pension status of `contributing` is NOT a sign of work on its own: a contribution is not
income, and local governments commonly pay the resident-pension (城乡居民养老保险)
contribution on behalf of destitute people. It is shown as a note (`tekun_pension_contribution`,
info) so the approver sees it, and changes nothing else. A pension being received counts as
income in the income test like any other income.
"""

from schemas.evidence import HousingFundRecord, IncomeRecord, PayrollRecord, PensionRecord, Record
from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts, is_wage
from service.policy.findings import RuleFinding


def is_work_evidence(record: Record) -> bool:
    if isinstance(record, HousingFundRecord):
        return record.status == "active"
    if isinstance(record, IncomeRecord):
        return is_wage(record.category)
    return isinstance(record, PayrollRecord)


def check_tekun_working_member(
    facts: HouseholdFacts, policy: PolicyParameters
) -> list[RuleFinding]:
    if policy.program != "tekun":
        return []
    findings = []
    for member in range(facts.size):
        own = [item for item in facts.records if item.member == member]
        working = [item for item in own if is_work_evidence(item.record)]
        if working:
            findings.append(
                RuleFinding(
                    "tekun_working_member",
                    "disqualifying",
                    {
                        "member": facts.masked(member),
                        "sources": ", ".join(sorted({item.source for item in working})),
                    },
                    tuple(facts.evidence(item) for item in working),
                )
            )
        findings.extend(
            RuleFinding(
                "tekun_pension_contribution",
                "info",
                {"member": facts.masked(member)},
                (facts.evidence(item),),
            )
            for item in own
            if isinstance(item.record, PensionRecord) and item.record.status == "contributing"
        )
    return findings
