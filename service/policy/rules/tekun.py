"""Tekun (特困): the destitute have no work income and no supporter able to work.

hedui's simplification: a household qualifies for tekun only if no member shows signs of
paid work, because a working member has an income and is, in a household, a supporter. The
signs are:
- a public payroll record (财政供养人员: a salaried public job);
- a wage or salary income record from any source (a salaried member), or one of work on
  one's own account (`SELF_EMPLOYMENT_CATEGORIES`);
- an active housing-fund account (deposits are paid only while employed).
Any such member is disqualifying (`tekun_working_member`).

Nor can the records show that a member is unable to work: 特困 needs no work ability (the
old, the young, the severely disabled), and no partner answers about disability. A member
of working age (16 to 59 on the day assessed, counted from the ID number's birth date) is
therefore a warning for a person to check (`tekun_working_age`, review), unless the request
names a self-care grade of 1 or 2 (unable or partly able to care for themselves), which a
caseworker establishes before asking.

A pension status of `contributing` is NOT a sign of work on its own: a contribution is not
income, and local governments commonly pay the resident-pension (城乡居民养老保险)
contribution on behalf of destitute people. It is shown as a note (`tekun_pension_contribution`,
info) so the approver sees it, and changes nothing else. A pension being received counts as
income in the income test like any other income.
"""

from datetime import date

from schemas.evidence import HousingFundRecord, IncomeRecord, PayrollRecord, PensionRecord, Record
from schemas.identity import birth_date
from schemas.policy import PolicyParameters
from schemas.report import EvidenceRef
from service.policy.facts import HouseholdFacts, is_wage
from service.policy.findings import RuleFinding

WORKING_AGE = range(16, 60)
"""Ages at which a person is presumed able to work (特困人员认定: under 16 and 60 or over are
not), in whole years."""
UNABLE_TO_CARE = frozenset({1, 2})
"""Self-care grades that mean no work ability: unable, or partly able, to care for oneself."""
ID_NUMBER = "id_number"
"""Pseudo-source of a fact read from a member's ID number (the age, never the birth date)."""


def age_on(id_number: str, day: date) -> int:
    """Whole years from the birth date an ID number holds to `day`."""
    born = birth_date(id_number)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_tekun_working_age(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    """A member of working age, nothing showing an inability to work: a person checks."""
    if policy.program != "tekun" or facts.as_of is None or facts.care_grade in UNABLE_TO_CARE:
        return []
    findings = []
    for member in range(facts.size):
        age = age_on(facts.members[member].id_number, facts.as_of)
        if age not in WORKING_AGE:
            continue
        masked = facts.masked(member)
        findings.append(
            RuleFinding(
                "tekun_working_age",
                "warning",
                {"member": masked, "age": str(age)},
                (EvidenceRef(source=ID_NUMBER, member=masked, fact=f"age={age} on {facts.as_of}"),),
            )
        )
    return findings


SELF_EMPLOYMENT_CATEGORIES = frozenset(
    {"business", "self-employment", "经营", "经营收入", "经营性收入", "个体经营"}
)
"""Income categories of work on one's own account (经营性收入): work, as a wage is."""


def is_work_evidence(record: Record) -> bool:
    if isinstance(record, HousingFundRecord):
        return record.status == "active"
    if isinstance(record, IncomeRecord):
        category = record.category.strip().lower()
        return is_wage(category) or category in SELF_EMPLOYMENT_CATEGORIES
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
