"""The benefit an eligible household receives.

- dibao (补差 top-up): (standard − per-capita income) × members, rounded half-up to fen.
  Computed as standard × members − household income, which is the same amount without
  rounding the per-capita figure first: 3 members with 1000 income under 640 get 920.00
  (not (640 − 333.33) × 3 = 920.01).
- tekun (simplified): tekun standard × members − household income, floored at 0; the same
  formula with the tekun standard (the one for the request's support arrangement, see
  arrangement.py), though the income test before it is the dibao one (rules/income.py).
  When the request names a care grade, the region's care subsidy for it is added once, with
  its own line in the basis: Yunnan rural, concentrated, grade 1, no
  income: 832 × 1 − 0 = 832.00, + 835.00 care subsidy = 1667.00 a month.
- linshi (simplified): a one-off, not a monthly payment: the monthly shortfall
  (standard × members − income) times `linshi_benefit_months`, capped at `special_aid_cap`
  when the region sets one. `monthly_amount` is then 0.00 and `one_off_amount` holds it.
"""

from decimal import Decimal

from schemas.money import format_money, to_cents
from schemas.policy import PolicyParameters
from schemas.report import Benefit
from service.policy.arrangement import Arrangement
from service.policy.facts import HouseholdFacts
from service.policy.messages import text


def compute_benefit(
    facts: HouseholdFacts,
    policy: PolicyParameters,
    language: str,
    arrangement: Arrangement | None = None,
) -> Benefit:
    """`policy` carries the standard applied; `arrangement` the tekun care subsidy, if any."""
    income = facts.monthly_income
    # The program's own standard: for tekun the support standard, not the dibao standard
    # its income test uses.
    shortfall = max(Decimal(0), policy.monthly_standard * facts.size - income)
    args = {
        "standard": format_money(policy.monthly_standard),
        "members": str(facts.size),
        "income": format_money(income),
    }
    if policy.program != "linshi":
        amount = to_cents(shortfall)
        basis = text("benefit_top_up", language, **args, amount=format_money(amount))
        if arrangement is None or arrangement.care_subsidy is None:
            return Benefit(monthly_amount=amount, basis=basis)
        care = to_cents(arrangement.care_subsidy)
        total = amount + care
        lines = [
            basis,
            text(
                "benefit_care_subsidy",
                language,
                mode=text(f"support_{arrangement.support_mode}", language),
                grade=str(arrangement.care_grade),
                care=format_money(care),
            ),
            text(
                "benefit_total",
                language,
                top_up=format_money(amount),
                care=format_money(care),
                total=format_money(total),
            ),
        ]
        return Benefit(monthly_amount=total, basis="\n".join(lines), care_subsidy=care)
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
