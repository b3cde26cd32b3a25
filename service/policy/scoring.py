"""The pure scorer: one household's stored facts + policy parameters → an Assessment.

No I/O, no clock, no database: the same input always gives the same output, byte for byte,
so a decision can be reproduced from the stored facts and the policy version years later.

Recommendation, in this order:
1. any disqualifying finding → "ineligible";
2. the verification is incomplete (a source not ok/no_record, or no source) → "review";
3. a warning that needs a person (REVIEW_CODES: near relative, non-residential property,
   public payroll outside dibao, large declared-vs-verified gap, placeholder standard,
   a non-exempt vehicle of unknown value)
   → "review";
4. otherwise the income test decides: per-capita income < standard → "eligible".
It is never "eligible" while any source is missing. Income at or above the standard is a
disqualifying finding once the picture is complete (step 1), so a household whose income
alone excludes it is not sent to review for a near-relative warning.

特困 (tekun), in addition (rules/tekun.py, arrangement.py):
- a member with paid work (a public payroll job, a wage or salary record, an active
  housing fund) is a working member or supporter: disqualifying;
- a member of working age (16 to 59) without a self-care grade of 1 or 2: no record can
  show the inability to work 特困 needs, so a person checks it (review);
- a pension status of `contributing` is not work and not income (local governments commonly
  pay the resident-pension contribution for the destitute): a note, nothing more;
- the standard is the one for the request's `support_mode` where the region sets one per
  arrangement, and a `care_grade` adds the region's care subsidy to the benefit.

Score: confidence (0–100) that the household is eligible; every line is in score_breakdown
and the lines sum to the score:
    50                                 starting point ("base")
  + 30                                 income_below_standard
  + round(10 × (standard × members − income) ÷ (standard × members))
                                       income_margin, 0–10: further below → more confident
  + 10                                 assets_within_limit
  − 20                                 each source_incomplete / no_sources
  − 15                                 each near_relative_registered
  − 10                                 each other warning
  − 100                                each disqualifying finding (so the score ends at 0)
  then clamped to 0–100 (a "clamp" line records the correction).
An eligible household without warnings scores 90–100; each warning lowers it.
"""

from decimal import ROUND_HALF_UP, Decimal

from schemas.assessment import AssessmentInput
from schemas.evidence import VehicleRecord
from schemas.money import to_cents
from schemas.policy import PolicyParameters
from schemas.report import (
    Assessment,
    Finding,
    HouseholdSummary,
    ScoreAdjustment,
    Severity,
)
from schemas.verification import Recommendation
from service.policy.arrangement import Arrangement, arrangement
from service.policy.benefit import compute_benefit
from service.policy.facts import HouseholdFacts, derive_facts
from service.policy.findings import RuleFinding
from service.policy.messages import normalise_language, render, text
from service.policy.rules import run_rules
from service.policy.rules.income import income_threshold, passes_income_test

BASE_POINTS = 50
INCOME_MARGIN_POINTS = 10
POINTS_BY_CODE: dict[str, int] = {
    "income_below_standard": 30,
    "assets_within_limit": 10,
    "source_incomplete": -20,
    "no_sources": -20,
    "near_relative_registered": -15,
}
POINTS_BY_SEVERITY: dict[Severity, int] = {"info": 0, "warning": -10, "disqualifying": -100}

REVIEW_CODES = frozenset(
    {
        "placeholder_standard",
        "source_incomplete",
        "no_sources",
        "near_relative_registered",
        "non_residential_property",
        "public_payroll_member",
        "business_legal_representative",
        "business_shareholder",
        "taxed_income_over_standard",
        "social_insurance_base_over_standard",
        "declared_income_gap",
        "vehicle_value_unknown",
        "tekun_working_age",
    }
)
"""Warnings a person has to look at before the household can be found eligible."""


def assess(
    inputs: AssessmentInput, policy: PolicyParameters, *, language: str = "zh"
) -> Assessment:
    """Apply `policy` to the household in `inputs`; `language` ("zh"/"en") sets wording only.

    For tekun, the standard is the one of the request's support arrangement and a care
    grade adds its care subsidy to the benefit (see arrangement.py); a combination the
    policy does not define raises ArrangementError (intake refuses it first).
    """
    language = normalise_language(language)
    if not inputs.members:
        raise ValueError("a household needs at least one member")
    if (inputs.program, inputs.area) != (policy.program, policy.area):
        raise ValueError(
            f"policy {policy.version} is for {policy.program}/{policy.area}, "
            f"not {inputs.program}/{inputs.area}"
        )
    found = arrangement(policy, inputs.support_mode, inputs.care_grade)
    policy = applied_policy(policy, found)
    facts = derive_facts(inputs, policy)
    drafts = run_rules(facts, policy)
    findings = [render(draft, language) for draft in drafts]
    recommendation = recommend(drafts, facts, policy)
    score, breakdown = score_of(drafts, findings, facts, policy, language)
    benefit = (
        compute_benefit(facts, policy, language, found) if recommendation == "eligible" else None
    )
    return Assessment(
        household=summarise(facts),
        findings=findings,
        complete=facts.complete,
        score=score,
        score_breakdown=breakdown,
        recommendation=recommendation,
        benefit=benefit,
    )


def applied_policy(policy: PolicyParameters, found: Arrangement) -> PolicyParameters:
    """`policy` with the standard of the request's arrangement: what every rule applies."""
    if found.monthly_standard == policy.monthly_standard:
        return policy
    return policy.model_copy(update={"monthly_standard": found.monthly_standard})


def recommend(
    drafts: list[RuleFinding], facts: HouseholdFacts, policy: PolicyParameters
) -> Recommendation:
    if any(draft.severity == "disqualifying" for draft in drafts):
        return "ineligible"
    if not facts.complete:
        return "review"
    if any(draft.severity == "warning" and draft.code in REVIEW_CODES for draft in drafts):
        return "review"
    return "eligible" if passes_income_test(facts, policy) else "ineligible"


def score_of(
    drafts: list[RuleFinding],
    findings: list[Finding],
    facts: HouseholdFacts,
    policy: PolicyParameters,
    language: str,
) -> tuple[int, list[ScoreAdjustment]]:
    lines = [ScoreAdjustment(code="base", points=BASE_POINTS, reason=text("score_base", language))]
    for draft, finding in zip(drafts, findings, strict=True):
        points = POINTS_BY_CODE.get(draft.code, POINTS_BY_SEVERITY[draft.severity])
        if points:
            lines.append(ScoreAdjustment(code=draft.code, points=points, reason=finding.message))
        if draft.code == "income_below_standard":
            lines.extend(_income_margin(facts, policy, language))
    total = sum(line.points for line in lines)
    score = min(100, max(0, total))
    if score != total:
        reason = text("score_clamp", language)
        lines.append(ScoreAdjustment(code="clamp", points=score - total, reason=reason))
    return score, lines


def _income_margin(
    facts: HouseholdFacts, policy: PolicyParameters, language: str
) -> list[ScoreAdjustment]:
    threshold = income_threshold(facts, policy)
    share = (threshold - facts.monthly_income) / threshold
    points = int((share * INCOME_MARGIN_POINTS).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if not points:
        return []
    percent = str((share * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    reason = text("score_income_margin", language, percent=percent)
    return [ScoreAdjustment(code="income_margin", points=points, reason=reason)]


def summarise(facts: HouseholdFacts) -> HouseholdSummary:
    income = facts.monthly_income
    return HouseholdSummary(
        members=facts.size,
        monthly_income=to_cents(income),
        per_capita_monthly_income=to_cents(income / facts.size),
        financial_assets=to_cents(facts.financial_assets),
        vehicles=sum(1 for _ in facts.of_type(VehicleRecord)),
        properties=len(facts.properties()),
    )
