"""What-if overrides: a new, clearly labelled policy; the original stays untouched."""

from datetime import date
from decimal import Decimal

import pytest

from schemas.policy import ResolvedPolicy
from service.policy import PolicyOverrideError, apply_overrides
from service.policy.overrides import check_overrides

from .builders import CATALOG


@pytest.fixture
def base() -> ResolvedPolicy:
    resolved = CATALOG.resolve("530103", "dibao", "urban", date(2026, 1, 1))
    assert resolved is not None
    return resolved


def test_override_changes_figures_version_and_hash(base: ResolvedPolicy) -> None:
    simulated = apply_overrides(base, {"monthly_standard": "700", "asset_months": 12})

    assert simulated.parameters.monthly_standard == Decimal("700")
    assert simulated.parameters.asset_months == 12
    assert simulated.parameters.version == "53/dibao/urban@2020-06-01+sim"
    assert simulated.content_hash != base.content_hash
    assert simulated.source_files == base.source_files
    assert base.parameters.monthly_standard == Decimal("640")


def test_no_overrides_still_marks_a_simulation(base: ResolvedPolicy) -> None:
    simulated = apply_overrides(base, {})
    assert simulated.parameters.version.endswith("+sim")
    assert simulated.content_hash != base.content_hash


def test_suffix_is_not_repeated_and_result_is_deterministic(base: ResolvedPolicy) -> None:
    once = apply_overrides(base, {"monthly_standard": 700})
    twice = apply_overrides(once, {"monthly_standard": 700})
    assert twice.parameters.version == once.parameters.version
    assert twice.content_hash == once.content_hash


def test_cap_can_be_removed(base: ResolvedPolicy) -> None:
    jiangxi = CATALOG.resolve("360102", "linshi", "urban", date(2026, 1, 1))
    assert jiangxi is not None
    assert apply_overrides(jiangxi, {"special_aid_cap": None}).parameters.special_aid_cap is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"monthly_standrad": 700}, "monthly_standrad"),
        ({"region_code": "36"}, "region_code"),
        ({"version": "mine"}, "version"),
        ({"standard_is_placeholder": False}, "standard_is_placeholder"),
        ({"effective_from": "2030-01-01"}, "effective_from"),
        ({"monthly_standard": -1}, "monthly_standard"),
        ({"monthly_standard": 0}, "monthly_standard"),
        ({"monthly_standard": "6.401"}, "monthly_standard"),
        ({"housing_fund_contribution_rate": 2}, "housing_fund_contribution_rate"),
        ({"asset_months": "many"}, "asset_months"),
        ({"monthly_standard": None}, "monthly_standard"),
        ({"asset_months": None}, "asset_months"),
        ({"vehicle_exempt_types": None}, "vehicle_exempt_types"),
        ({"income_gap_ratio": None}, "income_gap_ratio"),
        ({"asset_months": 10**30}, "asset_months"),
        ({"taxed_income_ratio": 10**30}, "taxed_income_ratio"),
        ({"income_gap_ratio": 2}, "income_gap_ratio"),
        # Figures whose arithmetic would leave the range an amount has.
        ({"monthly_standard": "99999999999999.99"}, "monthly_standard"),
        ({"monthly_standard": "1000000.01"}, "monthly_standard"),
        ({"special_aid_cap": 10**7}, "special_aid_cap"),
        ({"support_mode_standards": {"dispersed": 10**7}}, "support_mode_standards.dispersed"),
        (
            {"care_subsidies": {"concentrated": {"1": 10**7}}},
            "care_subsidies.concentrated.1",
        ),
        ({"housing_fund_contribution_rate": "1E-30"}, "housing_fund_contribution_rate"),
        ({"housing_fund_contribution_rate": 1e-30}, "housing_fund_contribution_rate"),
        ({"housing_fund_contribution_rate": "0.0099"}, "housing_fund_contribution_rate"),
        ({"income_gap_ratio": "1E-999999999"}, "income_gap_ratio"),
        ({"taxed_income_ratio": "0.0000001"}, "taxed_income_ratio"),
        # true is not the count 1, nor false 0.
        ({"asset_months": True}, "asset_months"),
        ({"max_dwellings": True}, "max_dwellings"),
        ({"max_dwellings": False}, "max_dwellings"),
        ({"linshi_benefit_months": True}, "linshi_benefit_months"),
        ({"recheck_regular_months": True}, "recheck_regular_months"),
        ({"recheck_other_months": True}, "recheck_other_months"),
        ({"consent_valid_months": True}, "consent_valid_months"),
        ({"housing_fund_contribution_rate": True}, "housing_fund_contribution_rate"),
        ({"income_gap_ratio": False}, "income_gap_ratio"),
        ({"taxed_income_ratio": True}, "taxed_income_ratio"),
        ({"social_insurance_base_ratio": True}, "social_insurance_base_ratio"),
        ({"monthly_standard": True}, "monthly_standard"),
        ({"vehicle_value_threshold": True}, "vehicle_value_threshold"),
        ({"special_aid_cap": True}, "special_aid_cap"),
        ({"business_stake": True}, "business_stake"),
        ({"vehicle_exempt_types": [True]}, "vehicle_exempt_types.0"),
        ({"care_subsidies": {"concentrated": {"1": True}}}, "care_subsidies.concentrated.1"),
        ({"support_mode_standards": {"dispersed": True}}, "support_mode_standards.dispersed"),
    ],
)
def test_bad_override_names_the_field(
    base: ResolvedPolicy, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(PolicyOverrideError) as caught:
        apply_overrides(base, overrides)
    assert caught.value.field == field


def test_a_boolean_count_is_refused_in_so_many_words(base: ResolvedPolicy) -> None:
    with pytest.raises(PolicyOverrideError) as caught:
        apply_overrides(base, {"asset_months": True})
    assert caught.value.problem == "must be a whole number, not a boolean"


def test_counts_are_read_from_numbers_and_digit_strings(base: ResolvedPolicy) -> None:
    """The command line sends every figure as text."""
    simulated = apply_overrides(base, {"asset_months": "12", "max_dwellings": 2})
    assert (simulated.parameters.asset_months, simulated.parameters.max_dwellings) == (12, 2)


def test_figures_at_their_bounds_are_accepted(base: ResolvedPolicy) -> None:
    simulated = apply_overrides(
        base,
        {
            "monthly_standard": "1000000.00",
            "housing_fund_contribution_rate": "0.01",
            "taxed_income_ratio": "0.000001",
        },
    )
    assert simulated.parameters.monthly_standard == Decimal("1000000")
    assert simulated.parameters.housing_fund_contribution_rate == Decimal("0.01")


def test_overriding_a_placeholder_standard_clears_the_flag() -> None:
    placeholder = CATALOG.resolve("110105", "dibao", "urban", date(2026, 1, 1))
    assert placeholder is not None
    assert placeholder.parameters.standard_is_placeholder
    assert apply_overrides(placeholder, {"asset_months": 12}).parameters.standard_is_placeholder
    chosen = apply_overrides(placeholder, {"monthly_standard": "1000"})
    assert chosen.parameters.standard_is_placeholder is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"monthly_standrad": 700}, "monthly_standrad"),
        ({"asset_months": None}, "asset_months"),
        # Lone surrogates (JSON's "\ud800"), wherever text goes: no hash or answer carries them.
        ({"vehicle_exempt_types": ["car", "\ud800"]}, "vehicle_exempt_types"),
        ({"support_mode_standards": {"\udc00": 1}}, "support_mode_standards"),
        ({"care_subsidies": {"concentrated": {"1\ud800": 1}}}, "care_subsidies"),
        ({"monthly_standard": "7\ud800"}, "monthly_standard"),
        ({"vehicle_exempt_types": [[[["\ud800"]]]]}, "vehicle_exempt_types"),
    ],
)
def test_overrides_are_checked_before_any_policy(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyOverrideError) as caught:
        check_overrides(overrides)
    assert caught.value.field == field
    check_overrides({"special_aid_cap": None, "monthly_standard": 700})  # these are fine


def test_a_name_that_is_not_text_is_refused_without_naming_it() -> None:
    with pytest.raises(PolicyOverrideError) as caught:
        check_overrides({"monthly_standard": 700, "\ud800": 1})
    assert caught.value.field is None
    assert caught.value.loc == ["overrides"]
    assert "lone surrogate" in caught.value.problem


def test_text_values_pass_however_deep() -> None:
    check_overrides({"vehicle_exempt_types": ["摩托车", "car"]})
    deep: object = "car"
    for _ in range(5000):
        deep = [deep]
    check_overrides({"vehicle_exempt_types": deep})  # refused later, by its type, not a crash
