"""Income: household monthly income against the monthly standard, and declared vs verified.

The test is per-capita income < standard, computed exactly as income < standard × members
so no rounding decides a borderline case. What counts as income is decided in facts.py.

Income at or above the standard is disqualifying once every source has answered; while a
source is missing it is only a warning, because the missing source might have covered a
member whose (higher) declared income is counted meanwhile.
"""

from decimal import ROUND_HALF_UP, Decimal

from schemas.money import format_money
from schemas.policy import PolicyParameters
from schemas.report import EvidenceRef, Severity
from service.policy.facts import DECLARED, HouseholdFacts, IncomeLine
from service.policy.findings import RuleFinding


def income_test_standard(policy: PolicyParameters) -> Decimal:
    """The monthly standard per member the income test uses: the program's own, but for
    tekun the local dibao standard (`income_standard`), below which 特困 income must be."""
    if policy.income_standard is not None:
        return policy.income_standard
    return policy.monthly_standard


def income_threshold(facts: HouseholdFacts, policy: PolicyParameters) -> Decimal:
    """Standard × members: the household income the per-capita test allows (exclusive)."""
    return income_test_standard(policy) * facts.size


def passes_income_test(facts: HouseholdFacts, policy: PolicyParameters) -> bool:
    return facts.monthly_income < income_threshold(facts, policy)


def check_income(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    income = facts.monthly_income
    args = {
        "income": format_money(income),
        "members": str(facts.size),
        "per_capita": format_money(income / facts.size),
        "standard": format_money(income_test_standard(policy)),
    }
    evidence = tuple(_line_evidence(facts, line) for line in facts.income_lines)
    if passes_income_test(facts, policy):
        return [RuleFinding("income_below_standard", "info", args, evidence)]
    severity: Severity = "disqualifying" if facts.complete else "warning"
    return [RuleFinding("income_above_standard", severity, args, evidence)]


def check_declared_income_gap(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    """For members whose income a source covers: declared differs from verified too much.

    Gap = |verified − declared| ÷ the larger of the two; above `income_gap_ratio` it is a
    warning needing review (an undeclared pension, or a declaration the records contradict).
    """
    findings = []
    for member in sorted(facts.covered):
        # What the sources verify: the declared rest above it is the declaration itself.
        lines = [
            line for line in facts.income_lines if line.member == member and line.source != DECLARED
        ]
        verified = sum((line.amount for line in lines), Decimal(0))
        declared = facts.members[member].declared_monthly_income
        larger = max(verified, declared)
        if larger == 0:
            continue
        ratio = abs(verified - declared) / larger
        if ratio <= policy.income_gap_ratio:
            continue
        masked = facts.masked(member)
        declared_ref = EvidenceRef(
            source=DECLARED, member=masked, fact=f"declared monthly_income={format_money(declared)}"
        )
        findings.append(
            RuleFinding(
                "declared_income_gap",
                "warning",
                {
                    "member": masked,
                    "declared": format_money(declared),
                    "verified": format_money(verified),
                    "gap_percent": _percent(ratio),
                    "limit_percent": _percent(policy.income_gap_ratio),
                },
                (declared_ref, *(_line_evidence(facts, line) for line in lines)),
            )
        )
    return findings


def _line_evidence(facts: HouseholdFacts, line: IncomeLine) -> EvidenceRef:
    return EvidenceRef(source=line.source, member=facts.masked(line.member), fact=line.fact)


def _percent(ratio: Decimal) -> str:
    return str((ratio * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
