"""The scorer end to end: hand-computed cases from the seed figures, recommendation, score."""

from datetime import date
from decimal import Decimal

import pytest

from schemas.assessment import NearRelativeMatch
from schemas.evidence import (
    BankAccountRecord,
    HousingFundRecord,
    IncomeRecord,
    PayrollRecord,
    PensionRecord,
    PropertyRecord,
    VehicleRecord,
)
from schemas.identity import mask_id_number
from schemas.report import Assessment
from schemas.verification import Area, Program
from service.policy import assess

from .builders import JIANGXI, YUNNAN, household, member, person, policy

A, B, C, D = person(21), person(22), person(23), person(24)


def run(
    declared: list[str],
    *,
    region: str = YUNNAN,
    program: Program = "dibao",
    area: Area = "urban",
    as_of: date = date(2026, 11, 20),
) -> Assessment:
    """A household of len(declared) members whose income is only declared (no source has any)."""
    # Tekun's members past working age (the working-age check has its own tests).
    birth = "19500101" if program == "tekun" else "19800101"
    members = [
        member(person(30 + index, birth=birth), amount) for index, amount in enumerate(declared)
    ]
    inputs = household(members, program=program, area=area)
    return assess(inputs, policy(region, program, area, as_of))


# (region, program, area, declared incomes, per-capita income, recommendation, benefit)
# Every benefit below is worked out by hand from the seed standards.
CASES = [
    # Yunnan urban dibao 640
    (YUNNAN, "dibao", "urban", ["0"], "0.00", "eligible", "640.00"),
    (YUNNAN, "dibao", "urban", ["500", "0"], "250.00", "eligible", "780.00"),  # (640-250)×2
    (YUNNAN, "dibao", "urban", ["1000", "0", "0"], "333.33", "eligible", "920.00"),  # 1920-1000
    (YUNNAN, "dibao", "urban", ["1200", "800", "0", "0"], "500.00", "eligible", "560.00"),
    (YUNNAN, "dibao", "urban", ["1280", "0"], "640.00", "ineligible", None),  # equal: not below
    # Yunnan rural dibao 375 (4500 / 12)
    (YUNNAN, "dibao", "rural", ["100"], "100.00", "eligible", "275.00"),
    (YUNNAN, "dibao", "rural", ["300", "300"], "300.00", "eligible", "150.00"),  # (375-300)×2
    (YUNNAN, "dibao", "rural", ["600", "0", "0"], "200.00", "eligible", "525.00"),  # 1125-600
    (YUNNAN, "dibao", "rural", ["1500", "0", "0", "0"], "375.00", "ineligible", None),
    # Yunnan tekun 832 (urban and rural)
    (YUNNAN, "tekun", "urban", ["0"], "0.00", "eligible", "832.00"),
    (YUNNAN, "tekun", "rural", ["300", "0"], "150.00", "eligible", "1364.00"),  # 1664-300
    (YUNNAN, "tekun", "rural", ["900"], "900.00", "ineligible", None),
    # Yunnan linshi: one-off = shortfall × 3 months, no cap
    (YUNNAN, "linshi", "urban", ["140"], "140.00", "eligible", "1500.00"),  # (640-140)×3
    # Jiangxi urban dibao 640, rural 385
    (JIANGXI, "dibao", "urban", ["500", "0"], "250.00", "eligible", "780.00"),
    (JIANGXI, "dibao", "urban", ["1000.50", "0", "0"], "333.50", "eligible", "919.50"),
    (JIANGXI, "dibao", "rural", ["85"], "85.00", "eligible", "300.00"),
    (JIANGXI, "dibao", "rural", ["385", "385"], "385.00", "ineligible", None),
    (JIANGXI, "dibao", "rural", ["400", "300", "200", "100"], "250.00", "eligible", "540.00"),
    (JIANGXI, "dibao", "rural", ["1", "0", "0"], "0.33", "eligible", "1154.00"),  # 1155-1
    # Jiangxi tekun urban 835, rural 400 (dispersed)
    (JIANGXI, "tekun", "urban", ["35"], "35.00", "eligible", "800.00"),
    (JIANGXI, "tekun", "rural", ["200", "0"], "100.00", "eligible", "600.00"),  # 800-200
    (JIANGXI, "tekun", "rural", ["400"], "400.00", "ineligible", None),
    # Jiangxi linshi: shortfall × 3, capped at 30000
    (JIANGXI, "linshi", "urban", ["500", "0"], "250.00", "eligible", "2340.00"),  # 780×3
    (JIANGXI, "linshi", "rural", ["0"] * 30, "0.00", "eligible", "30000.00"),  # 34650 → cap
]


@pytest.mark.parametrize(
    ("region", "program", "area", "declared", "per_capita", "recommendation", "benefit"), CASES
)
def test_hand_computed_cases(
    region: str,
    program: Program,
    area: Area,
    declared: list[str],
    per_capita: str,
    recommendation: str,
    benefit: str | None,
) -> None:
    assessment = run(declared, region=region, program=program, area=area)

    assert assessment.household.members == len(declared)
    assert assessment.household.monthly_income == sum(Decimal(x) for x in declared)
    assert str(assessment.household.per_capita_monthly_income) == per_capita
    assert assessment.complete is True
    assert assessment.recommendation == recommendation
    if benefit is None:
        assert assessment.benefit is None
    elif program == "linshi":
        assert assessment.benefit is not None
        assert str(assessment.benefit.one_off_amount) == benefit
        assert assessment.benefit.monthly_amount == Decimal("0.00")
    else:
        assert assessment.benefit is not None
        assert str(assessment.benefit.monthly_amount) == benefit


@pytest.mark.parametrize(
    ("as_of", "benefit"), [(date(2026, 11, 20), "900.00"), (date(2023, 12, 31), "780.00")]
)
def test_county_override_changes_the_benefit_from_its_date(as_of: date, benefit: str) -> None:
    """The illustrative county standard 700 from 2024: (700 − 250) × 2 = 900."""
    assessment = run(["500", "0"], region="530111", as_of=as_of)
    assert assessment.benefit is not None
    assert str(assessment.benefit.monthly_amount) == benefit


def test_report_example_from_the_api_contract() -> None:
    """Pension 300 + declared 200 for an uncovered member: 500 / 2 = 250 → 780.00."""
    inputs = household(
        [member(A, 300), member(B, 200)],
        {
            "pensions": [
                PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("300"))
            ]
        },
    )
    assessment = assess(inputs, policy("530102"))
    dumped = assessment.model_dump(mode="json")
    assert dumped["household"] == {
        "members": 2,
        "monthly_income": "500.00",
        "per_capita_monthly_income": "250.00",
        "financial_assets": "0.00",
        "vehicles": 0,
        "properties": 0,
    }
    assert dumped["recommendation"] == "eligible"
    assert dumped["benefit"]["monthly_amount"] == "780.00"
    assert dumped["benefit"]["basis"] == "640.00 元 × 2 人 − 家庭月收入 500.00 元 = 780.00 元"
    assert [f["code"] for f in dumped["findings"]] == [
        "income_below_standard",
        "assets_within_limit",
    ]


class TestRecommendation:
    def test_disqualifying_wins_even_when_incomplete(self) -> None:
        inputs = household(
            [member(A)],
            {
                "public_payroll": [
                    PayrollRecord(id_number=A, employer="某局", monthly_salary=Decimal("4500"))
                ]
            },
            statuses={"bank": "error"},
        )
        assessment = assess(inputs, policy())
        assert assessment.complete is False
        assert assessment.recommendation == "ineligible"

    @pytest.mark.parametrize("status", ["error", "timeout", "pending"])
    def test_incomplete_is_review_never_eligible(self, status: str) -> None:
        assessment = assess(household([member(A)], statuses={"pensions": status}), policy())
        assert assessment.complete is False
        assert assessment.recommendation == "review"
        assert assessment.benefit is None
        assert assessment.findings[0].code == "source_incomplete"

    def test_high_declared_income_while_incomplete_is_review(self) -> None:
        """The missing source might have covered the member with a lower verified income."""
        assessment = assess(household([member(A, 5000)], statuses={"pensions": "error"}), policy())
        assert assessment.recommendation == "review"

    def test_no_sources_is_review(self) -> None:
        assessment = assess(household([member(A)], sources=()), policy())
        assert (assessment.complete, assessment.recommendation) == (False, "review")

    def test_near_relative_sends_an_eligible_household_to_review(self) -> None:
        match = NearRelativeMatch(id_number=A, staff_position="村委会主任", relationship="子女")
        assessment = assess(household([member(A)], near_relatives=[match]), policy())
        assert assessment.recommendation == "review"
        assert "near_relative_registered" in [f.code for f in assessment.findings]

    def test_near_relative_does_not_rescue_an_income_above_standard(self) -> None:
        match = NearRelativeMatch(id_number=A, staff_position="村委会主任", relationship="子女")
        assessment = assess(household([member(A, 2000)], near_relatives=[match]), policy())
        assert assessment.recommendation == "ineligible"

    def test_non_residential_property_is_review(self) -> None:
        inputs = household(
            [member(A)],
            {
                "real_estate": [
                    PropertyRecord(
                        id_number=A,
                        certificate="C1",
                        usage="commercial",
                        area_m2=Decimal("20"),
                        region_code="530103",
                    )
                ]
            },
        )
        assert assess(inputs, policy()).recommendation == "review"

    def test_payroll_outside_dibao_is_review(self) -> None:
        inputs = household(
            [member(A, 100)],
            {
                "public_payroll": [
                    PayrollRecord(id_number=A, employer="某局", monthly_salary=Decimal("100"))
                ]
            },
            program="linshi",
        )
        assert assess(inputs, policy(program="linshi")).recommendation == "review"

    def test_a_declaration_above_the_standard_is_not_set_aside_for_smaller_records(
        self,
    ) -> None:
        """Declared 2000, records show 100: the household says it has 2000 a month, which
        no record contradicts (a record of 100 is not a record of nothing else): its income
        is 2000, above the standard, and the gap is shown for a person to look at."""
        inputs = household(
            [member(A, 2000)],
            {
                "pensions": [
                    PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("100"))
                ]
            },
        )
        assessment = assess(inputs, policy())
        assert assessment.household.monthly_income == Decimal("2000.00")
        assert assessment.recommendation == "ineligible"
        assert "declared_income_gap" in {finding.code for finding in assessment.findings}

    def test_a_declaration_just_above_a_smaller_pension_decides_the_income_test(self) -> None:
        """Yunnan urban, 640: a pension of 500 on record, 700 declared. Counting only the
        pension made the household eligible for 140 a month it does not need."""
        inputs = household(
            [member(A, 700)],
            {
                "pensions": [
                    PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("500"))
                ]
            },
        )
        assessment = assess(inputs, policy())
        assert assessment.household.monthly_income == Decimal("700.00")
        assert assessment.recommendation == "ineligible"
        assert assessment.benefit is None

    def test_placeholder_standard_is_review_never_eligible(self) -> None:
        """A region without figures of its own: the national placeholder needs a person."""
        assessment = assess(household([member(A)]), policy("110105"))
        assert assessment.recommendation == "review"
        assert assessment.findings[0].code == "placeholder_standard"
        assert assessment.benefit is None

    def test_cheap_vehicle_warning_lowers_score_but_stays_eligible(self) -> None:
        inputs = household(
            [member(A)],
            {
                "vehicles": [
                    VehicleRecord(id_number=A, plate="云A1", type="car", value=Decimal("20000"))
                ]
            },
        )
        lenient = policy(vehicle_value_threshold=Decimal("30000"))
        plain = assess(household([member(A)]), lenient)
        with_car = assess(inputs, lenient)
        assert with_car.recommendation == "eligible"
        assert with_car.score == plain.score - 10

    @pytest.mark.parametrize("value", [None, Decimal("0")])
    def test_vehicle_of_unknown_value_is_review_not_eligible(self, value: Decimal | None) -> None:
        """Worth "0.00, not above the 0.00 limit" once passed; a missing value is not a fact."""
        car = VehicleRecord(id_number=A, plate="云A1", type="car", value=value)
        assessment = assess(household([member(A)], {"vehicles": [car]}), policy())
        assert assessment.recommendation == "review"
        assert assessment.benefit is None
        [finding] = [f for f in assessment.findings if f.code.startswith("vehicle")]
        assert (finding.code, finding.severity) == ("vehicle_value_unknown", "warning")
        assert "价值未知" in finding.message
        assert finding.evidence[0].source == "vehicles"

    def test_tekun_with_working_member_is_ineligible(self) -> None:
        salary = PayrollRecord(id_number=B, employer="某局", monthly_salary=Decimal("300"))
        inputs = household(
            [member(A, 0), member(B, 300)], {"public_payroll": [salary]}, program="tekun"
        )
        assessment = assess(inputs, policy(program="tekun"))
        assert assessment.recommendation == "ineligible"
        assert "tekun_working_member" in [f.code for f in assessment.findings]

    @pytest.mark.parametrize(
        "category", ["工资性收入", "工资收入", "Wage income", " 薪资 ", "经营性收入", "business"]
    )
    def test_tekun_work_is_known_by_the_words_partners_use(self, category: str) -> None:
        """A wage in the statistical term (工资性收入), or work on one's own account: a
        working member, whatever the words."""
        old = person(28, birth="19500101")
        work = IncomeRecord(id_number=old, category=category, monthly_amount=Decimal("100"))
        inputs = household([member(old)], {"tax": [work]}, program="tekun", sources=["tax"])
        assessment = assess(inputs, policy(program="tekun"))
        assert "tekun_working_member" in [f.code for f in assessment.findings]
        assert assessment.recommendation == "ineligible"

    def test_a_wage_in_the_statistical_term_is_the_housing_fund_s_wage_not_another(
        self,
    ) -> None:
        """工资性收入 700 and a deposit of 168 (700 at the 24 % rate) are one job's wage."""
        someone = person(29)
        records = {
            "tax": [IncomeRecord(id_number=someone, category="工资性收入", monthly_amount=700)],
            "housing_fund": [
                HousingFundRecord(
                    id_number=someone,
                    status="active",
                    monthly_deposit=Decimal("168"),
                    balance=Decimal("1000"),
                )
            ],
        }
        inputs = household([member(someone), member(person(30))], records)
        assessment = assess(inputs, policy())
        assert assessment.household.monthly_income == Decimal("700.00")

    def test_tekun_contributing_to_a_pension_alone_stays_eligible(self) -> None:
        """Yunnan tekun 832, no income, 76: a contribution is a note; benefit 832.00."""
        old = person(25, birth="19500101")
        contributing = PensionRecord(
            id_number=old, status="contributing", monthly_amount=Decimal(0)
        )
        inputs = household([member(old)], {"pensions": [contributing]}, program="tekun")
        assessment = assess(inputs, policy(program="tekun"))
        assert assessment.recommendation == "eligible"
        assert assessment.benefit is not None
        assert str(assessment.benefit.monthly_amount) == "832.00"
        note = next(f for f in assessment.findings if f.code == "tekun_pension_contribution")
        assert note.severity == "info"
        assert assessment.score == 100  # 50 + 30 + 10 (margin) + 10 (assets); a note costs 0

    def test_tekun_income_must_be_below_the_dibao_standard_not_the_support_one(self) -> None:
        """Yunnan urban: a pension of 700 is above the dibao standard (640), though below
        the tekun support standard (832): not destitute (特困人员认定办法)."""
        old = person(27, birth="19500101")
        pension = PensionRecord(id_number=old, status="receiving", monthly_amount=Decimal(700))
        inputs = household([member(old)], {"pensions": [pension]}, program="tekun")
        parameters = policy(program="tekun")
        assert parameters.income_standard == policy(program="dibao").monthly_standard
        assessment = assess(inputs, parameters)
        assert assessment.recommendation == "ineligible"
        assert assessment.benefit is None
        assert "640.00" in assessment.findings[0].message

    @pytest.mark.parametrize(
        ("birth", "care_grade", "review"),
        [
            ("19800101", None, True),  # 46: of working age, nothing shows otherwise
            ("19800101", 3, True),  # able to care for themselves
            ("19800101", 1, False),  # unable to care for themselves: no work ability
            ("19800101", 2, False),
            ("19500101", None, False),  # 76
            ("20150101", None, False),  # 11
        ],
    )
    def test_tekun_of_working_age_needs_a_person_to_check_the_inability_to_work(
        self, birth: str, care_grade: int | None, review: bool
    ) -> None:
        """特困 needs no work ability, which no partner's records show: 16 to 59 years old
        and no self-care grade of 1 or 2 is a warning, never eligible on its own."""
        someone = person(26, birth=birth)
        inputs = household([member(someone)], {}, program="tekun", area="rural").model_copy(
            update={"support_mode": "concentrated", "care_grade": care_grade}
        )
        assessment = assess(inputs, policy(program="tekun", area="rural"))
        codes = [finding.code for finding in assessment.findings]
        assert ("tekun_working_age" in codes) is review
        assert (assessment.recommendation == "review") is review
        if review:
            [finding] = [f for f in assessment.findings if f.code == "tekun_working_age"]
            assert finding.severity == "warning"
            assert finding.evidence[0].fact.startswith("age=46 on ")
            assert birth not in str(finding)  # the age, never the birth date

    def test_assets_over_limit_is_ineligible(self) -> None:
        inputs = household(
            [member(A)],
            {
                "bank": [
                    BankAccountRecord(
                        id_number=A, bank="某银行", account="****1", balance=Decimal("20000")
                    )
                ]
            },
        )
        assert assess(inputs, policy()).recommendation == "ineligible"


class TestScore:
    def test_breakdown_of_the_contract_example(self) -> None:
        """50 + 30 (income) + round(10 × 780/1280 = 6.09) + 10 (assets) = 96."""
        assessment = run(["500", "0"])
        assert assessment.score == 96
        assert [(line.code, line.points) for line in assessment.score_breakdown] == [
            ("base", 50),
            ("income_below_standard", 30),
            ("income_margin", 6),
            ("assets_within_limit", 10),
        ]

    def test_no_income_scores_100(self) -> None:
        assert run(["0"]).score == 100

    def test_disqualified_household_scores_0_with_a_clamp_line(self) -> None:
        assessment = run(["2000"])
        assert assessment.score == 0
        assert assessment.score_breakdown[-1].code == "clamp"
        assert sum(line.points for line in assessment.score_breakdown) == 0

    def test_incomplete_source_costs_20_and_the_unconfirmed_asset_points(self) -> None:
        complete = assess(household([member(A)]), policy())
        incomplete = assess(household([member(A)], statuses={"bank": "timeout"}), policy())
        assert incomplete.score == complete.score - 20 - 10

    def test_assets_are_not_called_within_limit_while_a_source_is_missing(self) -> None:
        incomplete = assess(household([member(A)], statuses={"bank": "error"}), policy())
        assert "assets_within_limit" not in [finding.code for finding in incomplete.findings]


class TestLanguage:
    def test_english_messages(self) -> None:
        inputs = household([member(A, 500), member(B)])
        english = assess(inputs, policy(), language="en")
        assert english.findings[0].message == (
            "Household monthly income 500.00 yuan for a household of 2, 250.00 per person, "
            "below the 640.00 yuan standard."
        )
        assert english.score_breakdown[0].reason == "starting point"

    def test_chinese_is_the_default(self) -> None:
        inputs = household([member(A, 500), member(B)])
        assert assess(inputs, policy()).findings[0].message == (
            "家庭月收入 500.00 元，2 人，人均 250.00 元，低于标准 640.00 元。"
        )

    @pytest.mark.parametrize(
        ("language", "starting_point"),
        [
            ("zh-CN", "起始分"),
            ("zh_TW", "起始分"),
            ("en_US", "starting point"),
            ("EN", "starting point"),
        ],
    )
    def test_regional_variants_choose_their_language(
        self, language: str, starting_point: str
    ) -> None:
        inputs = household([member(A)])
        assessment = assess(inputs, policy(), language=language)
        assert assessment.score_breakdown[0].reason == starting_point
        primary = language[:2].lower()
        assert assessment == assess(inputs, policy(), language=primary)

    def test_unknown_language_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="unsupported language"):
            assess(household([member(A)]), policy(), language="fr")


class TestGuards:
    def test_program_must_match_the_policy(self) -> None:
        with pytest.raises(ValueError, match="dibao/urban"):
            assess(household([member(A)], program="tekun"), policy())

    def test_household_needs_members(self) -> None:
        with pytest.raises(ValueError, match="at least one member"):
            assess(household([]), policy())


class TestOutput:
    def test_findings_in_rule_order_then_member_order(self) -> None:
        inputs = household(
            [member(A), member(B)],
            {
                "vehicles": [
                    VehicleRecord(id_number=B, plate="云A2", type="car", value=Decimal("1")),
                    VehicleRecord(id_number=A, plate="云A1", type="car", value=Decimal("1")),
                ],
                "public_payroll": [
                    PayrollRecord(id_number=A, employer="某局", monthly_salary=Decimal("100"))
                ],
            },
            statuses={"bank": "error"},
        )
        findings = assess(inputs, policy()).findings
        assert [(f.code, f.evidence[0].member if f.evidence else None) for f in findings] == [
            ("source_incomplete", None),
            ("income_below_standard", mask_id_number(A)),
            ("declared_income_gap", mask_id_number(A)),
            ("vehicle_over_threshold", mask_id_number(A)),
            ("vehicle_over_threshold", mask_id_number(B)),
            ("public_payroll_member", mask_id_number(A)),
        ]

    def test_no_full_id_number_anywhere(self) -> None:
        match = NearRelativeMatch(id_number=C, staff_position="乡长", relationship=f"兄弟 {D}")
        inputs = household(
            [member(A), member(B), member(C)],
            {
                "bank": [
                    BankAccountRecord(
                        id_number=A,
                        bank=f"某银行 {D}",
                        account="6222020200112233",
                        balance=Decimal("3000"),
                    )
                ]
            },
            near_relatives=[match],
        )
        for language in ("zh", "en"):
            text = assess(inputs, policy(), language=language).model_dump_json()
            for id_number in (A, B, C, D):
                assert id_number not in text
            assert "6222020200112233" not in text


def test_near_relative_message_names_the_relationship_in_chinese() -> None:
    inputs = household([member(A)]).model_copy(
        update={
            "near_relatives": (
                NearRelativeMatch(id_number=A, staff_position="村委会主任", relationship="spouse"),
            )
        }
    )
    finding = next(
        f for f in assess(inputs, policy()).findings if f.code == "near_relative_registered"
    )
    assert "村委会主任的配偶" in finding.message
    english = assess(inputs, policy(), language="en").findings
    assert any("spouse" in f.message for f in english)
