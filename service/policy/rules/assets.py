"""Financial assets per capita against `asset_months` × the monthly standard.

Financial assets are bank balances and generic asset records marked financial. The
housing-fund balance is deliberately left out: it is locked (withdrawable only on
retirement, house purchase and similar events) and cannot pay for living costs, so counting
it would refuse aid to working poor households for savings they cannot touch. It is shown as
information so the approver still sees it. Non-financial assets are shown the same way.
"""

from decimal import Decimal

from schemas.evidence import AssetRecord, HousingFundRecord
from schemas.money import format_money
from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def asset_limit(facts: HouseholdFacts, policy: PolicyParameters) -> Decimal:
    """The household's allowance: per-capita limit × members."""
    return policy.monthly_standard * policy.asset_months * facts.size


def check_financial_assets(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    total = facts.financial_assets
    args = {
        "total": format_money(total),
        "per_capita": format_money(total / facts.size),
        "limit": format_money(policy.monthly_standard * policy.asset_months),
        "months": str(policy.asset_months),
    }
    evidence = tuple(facts.evidence(item) for item, _ in facts.financial_asset_items())
    if total > asset_limit(facts, policy):
        return [RuleFinding("assets_over_limit", "disqualifying", args, evidence)]
    if not facts.complete:
        # A source that did not answer may hold the balances that would exceed the limit:
        # say nothing reassuring (and score nothing) until every source has answered.
        return []
    return [RuleFinding("assets_within_limit", "info", args, evidence)]


def check_housing_fund_balance(
    facts: HouseholdFacts, policy: PolicyParameters
) -> list[RuleFinding]:
    return [
        RuleFinding(
            "housing_fund_balance_not_counted",
            "info",
            {"member": facts.masked(item.member), "balance": format_money(record.balance)},
            (facts.evidence(item),),
        )
        for item, record in facts.of_type(HousingFundRecord)
        if record.balance > 0
    ]


def check_other_assets(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    return [
        RuleFinding(
            "non_financial_asset",
            "info",
            {
                "member": facts.masked(item.member),
                "category": record.category,
                "value": format_money(record.value),
            },
            (facts.evidence(item),),
        )
        for item, record in facts.of_type(AssetRecord)
        if not record.financial
    ]
