"""The benefit an eligible household receives.

- dibao (补差 top-up): (standard − per-capita income) × members, rounded half-up to fen.
  Computed as standard × members − household income, which is the same amount without
  rounding the per-capita figure first: 3 members with 1000 income under 640 get 920.00
  (not (640 − 333.33) × 3 = 920.01).
- tekun (simplified): tekun standard × members − household income, floored at 0; the same
  formula with the tekun standard.
- linshi (simplified): a one-off, not a monthly payment: the monthly shortfall
  (standard × members − income) times `linshi_benefit_months`, capped at `special_aid_cap`
  when the region sets one. `monthly_amount` is then 0.00 and `one_off_amount` holds it.
"""

from decimal import Decimal

from schemas.money import format_money, to_cents
from schemas.policy import PolicyParameters
from schemas.report import Benefit
from service.policy.facts import HouseholdFacts
from service.policy.messages import text
from service.policy.rules.income import income_threshold


def compute_benefit(facts: HouseholdFacts, policy: PolicyParameters, language: str) -> Benefit:
    income = facts.monthly_income
    shortfall = max(Decimal(0), income_threshold(facts, policy) - income)
    args = {
        "standard": format_money(policy.monthly_standard),
        "members": str(facts.size),
        "income": format_money(income),
    }
    if policy.program != "linshi":
        amount = to_cents(shortfall)
        basis = text("benefit_top_up", language, **args, amount=format_money(amount))
        return Benefit(monthly_amount=amount, basis=basis)
    raw = to_cents(shortfall * policy.linshi_benefit_months)
    cap = policy.special_aid_cap
    amount = raw if cap is None else min(raw, cap)
    basis = text(
        "benefit_one_off",
        language,
        **args,
        months=str(policy.linshi_benefit_months),
        raw=format_money(raw),
        cap=format_money(cap) if cap is not None else text("no_cap", language),
        amount=format_money(amount),
    )
    return Benefit(monthly_amount=Decimal("0.00"), one_off_amount=to_cents(amount), basis=basis)
