"""Each rule on its own: code, severity, message arguments and evidence."""

from decimal import Decimal

import pytest

from schemas.assessment import NearRelativeMatch
from schemas.evidence import (
    AssetRecord,
    BankAccountRecord,
    HousingFundRecord,
    IncomeRecord,
    PayrollRecord,
    PensionRecord,
    PropertyRecord,
    Record,
    VehicleRecord,
)
from schemas.identity import mask_id_number
from schemas.report import EvidenceRef
from schemas.verification import Program
from service.policy.findings import RuleFinding
from service.policy.messages import render
from service.policy.rules.assets import (
    check_financial_assets,
    check_housing_fund_balance,
    check_other_assets,
)
from service.policy.rules.completeness import check_sources
from service.policy.rules.income import check_declared_income_gap, check_income
from service.policy.rules.payroll import check_public_payroll
from service.policy.rules.real_estate import check_real_estate
from service.policy.rules.relatives import check_near_relatives
from service.policy.rules.standard import check_placeholder_standard
from service.policy.rules.tekun import check_tekun_working_member
from service.policy.rules.vehicles import check_vehicles
from service.policy.scoring import assess

from .builders import facts_of, household, member, person, policy

A, B = person(11), person(12)
YUNNAN_URBAN = policy()  # standard 640, 24 months → 15360 per person


def car(value: str | None, type_: str = "car", owner: str = A) -> VehicleRecord:
    """A vehicle; value None: the partner recorded no value."""
    amount = Decimal(value) if value is not None else None
    return VehicleRecord(id_number=owner, plate="云A12345", type=type_, value=amount)


def bank(balance: str, owner: str = A) -> BankAccountRecord:
    return BankAccountRecord(
        id_number=owner, bank="某银行", account="****1234", balance=Decimal(balance)
    )


def home(usage: str = "residential", owner: str = A, certificate: str = "C1") -> PropertyRecord:
    return PropertyRecord(
        id_number=owner,
        certificate=certificate,
        usage=usage,
        area_m2=Decimal("80"),
        region_code="530103",
    )


class TestIncome:
    def test_below_standard_is_info_with_evidence_per_income_line(self) -> None:
        inputs = household(
            [member(A, 300), member(B, 200)],
            {
                "pensions": [
                    PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("300"))
                ]
            },
        )
        [finding] = check_income(facts_of(inputs), YUNNAN_URBAN)
        assert (finding.code, finding.severity) == ("income_below_standard", "info")
        assert finding.args == {
            "income": "500.00",
            "members": "2",
            "per_capita": "250.00",
            "standard": "640.00",
        }
        assert [(ref.source, ref.member) for ref in finding.evidence] == [
            ("pensions", mask_id_number(A)),
            ("declared", mask_id_number(B)),
        ]

    def test_equal_to_standard_is_not_below(self) -> None:
        [finding] = check_income(facts_of(household([member(A, 640)])), YUNNAN_URBAN)
        assert (finding.code, finding.severity) == ("income_above_standard", "disqualifying")

    def test_above_standard_is_only_a_warning_while_a_source_is_missing(self) -> None:
        inputs = household([member(A, 900)], statuses={"pensions": "timeout"})
        [finding] = check_income(facts_of(inputs), YUNNAN_URBAN)
        assert (finding.code, finding.severity) == ("income_above_standard", "warning")


class TestDeclaredIncomeGap:
    @pytest.mark.parametrize(
        ("declared", "verified", "flagged"),
        [
            ("300", "300", False),
            ("0", "300", True),  # an undeclared pension
            ("1000", "800", False),  # 20%
            ("1000", "700", False),  # exactly 30%: not above the limit
            ("1000", "690", True),  # 31%
            ("500", "1000", True),  # declared half of what records show
        ],
    )
    def test_gap_above_ratio_is_a_warning(
        self, declared: str, verified: str, flagged: bool
    ) -> None:
        inputs = household(
            [member(A, declared)],
            {
                "pensions": [
                    PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal(verified))
                ]
            },
        )
        findings = check_declared_income_gap(facts_of(inputs), YUNNAN_URBAN)
        assert bool(findings) is flagged
        if flagged:
            assert findings[0].severity == "warning"
            assert findings[0].args["member"] == mask_id_number(A)
            assert [ref.source for ref in findings[0].evidence] == ["declared", "pensions"]

    def test_uncovered_member_has_no_gap(self) -> None:
        """Nothing verifies B's declaration, so there is nothing to compare it with."""
        assert check_declared_income_gap(facts_of(household([member(B, 5000)])), YUNNAN_URBAN) == []

    def test_ratio_is_a_parameter(self) -> None:
        inputs = household(
            [member(A, "1000")],
            {
                "pensions": [
                    PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("690"))
                ]
            },
        )
        lenient = policy(income_gap_ratio=Decimal("0.5"))
        assert check_declared_income_gap(facts_of(inputs), lenient) == []


class TestFinancialAssets:
    @pytest.mark.parametrize(
        ("balance", "code", "severity"),
        [
            ("15360.00", "assets_within_limit", "info"),
            ("15360.01", "assets_over_limit", "disqualifying"),
        ],
    )
    def test_limit_is_asset_months_times_standard_per_person(
        self, balance: str, code: str, severity: str
    ) -> None:
        facts = facts_of(household([member(A)], {"bank": [bank(balance)]}))
        [finding] = check_financial_assets(facts, YUNNAN_URBAN)
        assert (finding.code, finding.severity) == (code, severity)
        assert finding.args["limit"] == "15360.00"
        assert finding.evidence[0].source == "bank"

    def test_limit_scales_with_members(self) -> None:
        inputs = household([member(A), member(B)], {"bank": [bank("30720")]})
        [finding] = check_financial_assets(facts_of(inputs), YUNNAN_URBAN)
        assert finding.code == "assets_within_limit"
        assert finding.args["per_capita"] == "15360.00"

    def test_financial_asset_record_counts(self) -> None:
        inputs = household(
            [member(A)],
            {
                "bank": [bank("10000")],
                "securities": [AssetRecord(id_number=A, category="fund", value=Decimal("6000"))],
            },
        )
        [finding] = check_financial_assets(facts_of(inputs), YUNNAN_URBAN)
        assert finding.code == "assets_over_limit"
        assert [ref.source for ref in finding.evidence] == ["bank", "securities"]

    def test_housing_fund_balance_is_reported_not_counted(self) -> None:
        inputs = household(
            [member(A)],
            {
                "housing_fund": [
                    HousingFundRecord(
                        id_number=A,
                        status="closed",
                        balance=Decimal("90000"),
                        monthly_deposit=Decimal("0"),
                    )
                ]
            },
        )
        facts = facts_of(inputs)
        [assets] = check_financial_assets(facts, YUNNAN_URBAN)
        [info] = check_housing_fund_balance(facts, YUNNAN_URBAN)
        assert assets.code == "assets_within_limit"
        assert (info.code, info.severity, info.args["balance"]) == (
            "housing_fund_balance_not_counted",
            "info",
            "90000.00",
        )

    def test_non_financial_asset_is_reported_not_counted(self) -> None:
        inputs = household(
            [member(A)],
            {
                "assets": [
                    AssetRecord(
                        id_number=A, category="livestock", value=Decimal("99999"), financial=False
                    )
                ]
            },
        )
        facts = facts_of(inputs)
        assert check_financial_assets(facts, YUNNAN_URBAN)[0].code == "assets_within_limit"
        [info] = check_other_assets(facts, YUNNAN_URBAN)
        assert (info.code, info.severity) == ("non_financial_asset", "info")


class TestVehicles:
    @pytest.mark.parametrize(
        ("record", "threshold", "code", "severity"),
        [
            (car("85000"), "0", "vehicle_over_threshold", "disqualifying"),
            (car("0"), "0", "vehicle_value_unknown", "warning"),
            (car("0"), "50000", "vehicle_value_unknown", "warning"),
            (car(None), "0", "vehicle_value_unknown", "warning"),
            (car(None, "truck"), "50000", "vehicle_value_unknown", "warning"),
            (car(None, "motorcycle"), "0", "vehicle_exempt", "info"),
            (car("0.01"), "0", "vehicle_over_threshold", "disqualifying"),
            (car("50000"), "50000", "vehicle_under_threshold", "warning"),
            (car("50000.01"), "50000", "vehicle_over_threshold", "disqualifying"),
            (car("9000", "motorcycle"), "0", "vehicle_exempt", "info"),
            (car("30000", "disability"), "0", "vehicle_exempt", "info"),
            (car("20000", "truck"), "0", "vehicle_over_threshold", "disqualifying"),
        ],
    )
    def test_classification(
        self, record: VehicleRecord, threshold: str, code: str, severity: str
    ) -> None:
        inputs = household([member(A)], {"vehicles": [record]})
        [finding] = check_vehicles(
            facts_of(inputs), policy(vehicle_value_threshold=Decimal(threshold))
        )
        assert (finding.code, finding.severity) == (code, severity)
        assert finding.evidence[0].source == "vehicles"
        assert finding.evidence[0].member == mask_id_number(A)

    @pytest.mark.parametrize("value", [None, "0"])
    def test_unknown_value_says_so_in_both_languages(self, value: str | None) -> None:
        inputs = household([member(A)], {"vehicles": [car(value)]})
        [draft] = check_vehicles(facts_of(inputs), YUNNAN_URBAN)
        zh, en = render(draft, "zh").message, render(draft, "en").message
        assert "价值未知" in zh
        assert "value is unknown" in en
        assert "0.00 yuan" not in en
        assert "limit" not in en

    def test_exempt_types_are_a_parameter(self) -> None:
        inputs = household([member(A)], {"vehicles": [car("9000", "motorcycle")]})
        [finding] = check_vehicles(facts_of(inputs), policy(vehicle_exempt_types=("disability",)))
        assert finding.code == "vehicle_over_threshold"

    def test_one_finding_per_vehicle_in_member_order(self) -> None:
        inputs = household(
            [member(A), member(B)], {"vehicles": [car("1", owner=B), car("2", owner=A)]}
        )
        findings = check_vehicles(facts_of(inputs), YUNNAN_URBAN)
        assert [f.args["member"] for f in findings] == [mask_id_number(A), mask_id_number(B)]


class TestRealEstate:
    def test_one_dwelling_is_fine(self) -> None:
        assert (
            check_real_estate(
                facts_of(household([member(A)], {"real_estate": [home()]})), YUNNAN_URBAN
            )
            == []
        )

    def test_more_dwellings_than_allowed_is_disqualifying(self) -> None:
        inputs = household(
            [member(A), member(B)],
            {"real_estate": [home(owner=A), home(owner=B, certificate="C2")]},
        )
        [finding] = check_real_estate(facts_of(inputs), YUNNAN_URBAN)
        assert (finding.code, finding.severity) == ("dwellings_over_limit", "disqualifying")
        assert finding.args == {"count": "2", "limit": "1"}
        assert len(finding.evidence) == 2

    def test_max_dwellings_is_a_parameter(self) -> None:
        inputs = household([member(A)], {"real_estate": [home(), home(certificate="C2")]})
        assert check_real_estate(facts_of(inputs), policy(max_dwellings=2)) == []

    def test_a_flat_two_members_own_together_is_one_dwelling(self) -> None:
        """The registry answers per person: a flat a couple own together (共同共有) comes
        back once for each, with one certificate. One dwelling, whose evidence names both."""
        inputs = household([member(A), member(B)], {"real_estate": [home(), home(owner=B)]})
        assert check_real_estate(facts_of(inputs), YUNNAN_URBAN) == []
        report = assess(inputs, YUNNAN_URBAN)
        assert report.household.properties == 1
        assert report.recommendation == "eligible"
        second = household(
            [member(A), member(B)],
            {"real_estate": [home(), home(owner=B), home(owner=B, certificate="C2")]},
        )
        [finding] = check_real_estate(facts_of(second), YUNNAN_URBAN)
        assert finding.args == {"count": "2", "limit": "1"}
        assert len(finding.evidence) == 3  # every owner's record of each

    def test_the_same_certificate_number_in_another_region_is_another_property(self) -> None:
        elsewhere = home(owner=B).model_copy(update={"region_code": "530102"})
        inputs = household([member(A), member(B)], {"real_estate": [home(), elsewhere]})
        [finding] = check_real_estate(facts_of(inputs), YUNNAN_URBAN)
        assert finding.code == "dwellings_over_limit"

    def test_records_without_a_certificate_number_are_never_merged(self) -> None:
        """Two flats are never taken for one by a guess: a missing fact is no good fact."""
        inputs = household(
            [member(A)], {"real_estate": [home(certificate=""), home(certificate=" ")]}
        )
        [finding] = check_real_estate(facts_of(inputs), YUNNAN_URBAN)
        assert finding.args == {"count": "2", "limit": "1"}

    def test_a_shop_two_members_own_together_is_one_warning_naming_both(self) -> None:
        inputs = household(
            [member(A), member(B)],
            {"real_estate": [home("commercial"), home("commercial", owner=B)]},
        )
        [finding] = check_real_estate(facts_of(inputs), YUNNAN_URBAN)
        assert finding.code == "non_residential_property"
        assert finding.args["member"] == f"{mask_id_number(A)}, {mask_id_number(B)}"
        assert len(finding.evidence) == 2

    @pytest.mark.parametrize("usage", ["commercial", "land"])
    def test_non_residential_property_needs_review(self, usage: str) -> None:
        inputs = household([member(A)], {"real_estate": [home(usage)]})
        [finding] = check_real_estate(facts_of(inputs), YUNNAN_URBAN)
        assert (finding.code, finding.severity) == ("non_residential_property", "warning")
        assert finding.args["usage"] == usage


class TestPublicPayroll:
    @pytest.mark.parametrize(
        ("program", "severity"),
        [("dibao", "disqualifying"), ("tekun", "warning"), ("linshi", "warning")],
    )
    def test_severity_depends_on_program(self, program: Program, severity: str) -> None:
        inputs = household(
            [member(A)],
            {
                "public_payroll": [
                    PayrollRecord(id_number=A, employer="某某局", monthly_salary=Decimal("4500"))
                ]
            },
            program=program,
        )
        [finding] = check_public_payroll(facts_of(inputs), policy(program=program))
        assert (finding.code, finding.severity) == ("public_payroll_member", severity)
        assert finding.args == {
            "member": mask_id_number(A),
            "employer": "某某局",
            "amount": "4500.00",
        }
        assert finding.evidence[0].source == "public_payroll"


class TestTekunWorkingMember:
    @pytest.mark.parametrize(
        ("source", "record"),
        [
            (
                "public_payroll",
                PayrollRecord(id_number=A, employer="某局", monthly_salary=Decimal("100")),
            ),
            (
                "tax",
                IncomeRecord(id_number=A, category="Salary", monthly_amount=Decimal("1800")),
            ),
            (
                "housing_fund",
                HousingFundRecord(
                    id_number=A,
                    status="active",
                    balance=Decimal("0"),
                    monthly_deposit=Decimal("10"),
                ),
            ),
        ],
    )
    def test_earning_member_is_disqualifying(self, source: str, record: object) -> None:
        inputs = household([member(A)], {source: [record]}, program="tekun")  # type: ignore[list-item]
        [finding] = check_tekun_working_member(facts_of(inputs), policy(program="tekun"))
        assert (finding.code, finding.severity) == ("tekun_working_member", "disqualifying")
        assert finding.args["sources"] == source

    def test_contributing_to_a_pension_is_a_note_not_work(self) -> None:
        """A contribution is not income; the resident pension is often paid by the government."""
        contributing = PensionRecord(id_number=A, status="contributing", monthly_amount=Decimal(0))
        inputs = household([member(A)], {"pensions": [contributing]}, program="tekun")
        [note] = check_tekun_working_member(facts_of(inputs), policy(program="tekun"))
        assert (note.code, note.severity) == ("tekun_pension_contribution", "info")
        assert note.args == {"member": mask_id_number(A)}
        assert note.evidence[0].source == "pensions"
        assert "代缴" in render(note, "zh").message

    def test_contributing_beside_an_active_housing_fund_is_still_work(self) -> None:
        records: dict[str, list[Record]] = {
            "pensions": [
                PensionRecord(id_number=A, status="contributing", monthly_amount=Decimal(0))
            ],
            "housing_fund": [
                HousingFundRecord(
                    id_number=A, status="active", balance=Decimal(0), monthly_deposit=Decimal(240)
                )
            ],
        }
        inputs = household([member(A)], records, program="tekun")
        found = check_tekun_working_member(facts_of(inputs), policy(program="tekun"))
        assert [(f.code, f.severity) for f in found] == [
            ("tekun_working_member", "disqualifying"),
            ("tekun_pension_contribution", "info"),
        ]
        assert found[0].args["sources"] == "housing_fund"

    @pytest.mark.parametrize("category", ["rental", "interest", "transfer"])
    def test_income_that_is_not_a_wage_is_not_work(self, category: str) -> None:
        """Income that needs no work (a rent, interest, a family's help): income, not work.
        (Work on one's own account, `business`, is work: see test_scoring.)"""
        rent = IncomeRecord(id_number=A, category=category, monthly_amount=Decimal("100"))
        inputs = household([member(A)], {"tax": [rent]}, program="tekun")
        assert check_tekun_working_member(facts_of(inputs), policy(program="tekun")) == []

    def test_receiving_a_pension_is_not_work(self) -> None:
        inputs = household(
            [member(A)],
            {
                "pensions": [
                    PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("150"))
                ]
            },
            program="tekun",
        )
        assert check_tekun_working_member(facts_of(inputs), policy(program="tekun")) == []

    def test_other_programs_are_not_checked(self) -> None:
        inputs = household(
            [member(A)],
            {
                "public_payroll": [
                    PayrollRecord(id_number=A, employer="某局", monthly_salary=Decimal("100"))
                ]
            },
        )
        assert check_tekun_working_member(facts_of(inputs), YUNNAN_URBAN) == []


class TestNearRelatives:
    def test_registered_relative_is_a_warning_the_approver_sees(self) -> None:
        match = NearRelativeMatch(id_number=B, staff_position="村委会主任", relationship="配偶")
        inputs = household([member(A), member(B)], near_relatives=[match])
        [finding] = check_near_relatives(facts_of(inputs), YUNNAN_URBAN)
        assert (finding.code, finding.severity) == ("near_relative_registered", "warning")
        [ref] = finding.evidence
        assert ref.source == "near_relative_registry"
        assert ref.member == mask_id_number(B)
        assert ref.fact == "staff_position=村委会主任 relationship=配偶"

    def test_findings_follow_member_order(self) -> None:
        matches = [
            NearRelativeMatch(id_number=B, staff_position="x", relationship="y"),
            NearRelativeMatch(id_number=A, staff_position="x", relationship="y"),
        ]
        inputs = household([member(A), member(B)], near_relatives=matches)
        findings = check_near_relatives(facts_of(inputs), YUNNAN_URBAN)
        assert [f.args["member"] for f in findings] == [mask_id_number(A), mask_id_number(B)]


class TestSources:
    @pytest.mark.parametrize("status", ["error", "timeout", "pending"])
    def test_unsettled_source_is_named(self, status: str) -> None:
        inputs = household([member(A)], statuses={"bank": status})
        [finding] = check_sources(facts_of(inputs), YUNNAN_URBAN)
        assert (finding.code, finding.severity) == ("source_incomplete", "warning")
        assert finding.args == {"source": "bank", "status": status}
        assert finding.evidence[0].source == "bank"

    def test_settled_sources_give_nothing(self) -> None:
        inputs = household([member(A)], {"bank": [bank("1")]})
        assert check_sources(facts_of(inputs), YUNNAN_URBAN) == []

    def test_no_source_at_all_is_incomplete(self) -> None:
        facts = facts_of(household([member(A)], sources=()))
        [finding] = check_sources(facts, YUNNAN_URBAN)
        assert finding.code == "no_sources"
        assert facts.complete is False

    def test_detail_never_leaks_an_id_number(self) -> None:
        inputs = household([member(A)], statuses={"bank": "error"})
        broken = inputs.sources[0].model_copy(update={"detail": f"no answer for {A}"})
        inputs = inputs.model_copy(update={"sources": (broken, *inputs.sources[1:])})
        [finding] = check_sources(facts_of(inputs), YUNNAN_URBAN)
        assert A not in finding.evidence[0].fact
        assert mask_id_number(A) in finding.evidence[0].fact


class TestPlaceholderStandard:
    def test_placeholder_standard_is_a_warning_naming_the_version(self) -> None:
        placeholder = policy("110105")
        [finding] = check_placeholder_standard(facts_of(household([member(A)])), placeholder)
        assert (finding.code, finding.severity) == ("placeholder_standard", "warning")
        assert finding.args == {"version": "national/dibao/urban@2019-01-01", "standard": "640.00"}
        assert finding.evidence[0].source == "policy"

    def test_published_standard_gives_nothing(self) -> None:
        assert check_placeholder_standard(facts_of(household([member(A)])), YUNNAN_URBAN) == []


class TestRenderedEvidence:
    def test_a_fact_holding_an_id_number_is_redacted_once_more(self) -> None:
        owner = person(1)
        leaked = EvidenceRef(source="bank", member=mask_id_number(owner), fact=f"note {owner}")
        clean = EvidenceRef(source="bank", member=mask_id_number(owner), fact="balance=1.00")
        args = {"member": mask_id_number(owner), "balance": "1.00"}
        draft = RuleFinding("housing_fund_balance_not_counted", "info", args, (leaked, clean))
        rendered = render(draft, "en").evidence
        assert [ref.fact for ref in rendered] == [f"note {mask_id_number(owner)}", "balance=1.00"]
        assert rendered[1] == clean
