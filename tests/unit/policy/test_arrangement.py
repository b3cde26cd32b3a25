"""特困 arrangements: the standard per support mode and the care subsidy per self-care grade.

Every figure below is worked out by hand from the seed documents:
- Yunnan 2020: tekun standard 832 (urban and rural, both arrangements); care subsidy for
  concentrated support 835 / 418 / 251 for grades 1 / 2 / 3.
- Jiangxi 2019: rural tekun 505 concentrated / 400 dispersed, urban 835; care funding in the
  concentrated care centres 1,200 (失能, grade 1) / 300 (半失能, grade 2), none arranged for
  grade 3.
"""

from decimal import Decimal
from pathlib import Path

import pytest

from schemas.assessment import AssessmentInput
from schemas.evidence import PensionRecord
from schemas.report import Assessment
from schemas.verification import Area, CareGrade, Program, SupportMode
from service.policy import assess
from service.policy.arrangement import ArrangementError, arrangement
from service.policy.catalog import PolicyCatalog
from service.policy.files import PolicyFileError

from .builders import JIANGXI, YUNNAN, household, member, person, policy


def tekun_case(
    declared: list[str],
    *,
    region: str,
    area: Area,
    support_mode: SupportMode | None,
    care_grade: CareGrade | None = None,
    program: Program = "tekun",
) -> tuple[AssessmentInput, Assessment]:
    # Past working age: the destitute old (the working-age check has its own tests).
    members = [
        member(person(60 + index, birth="19500101"), amount)
        for index, amount in enumerate(declared)
    ]
    inputs = household(members, program=program, area=area).model_copy(
        update={"support_mode": support_mode, "care_grade": care_grade}
    )
    return inputs, assess(inputs, policy(region, program, area))


# (region, area, mode, grade, declared incomes, top-up, care subsidy, monthly amount)
BENEFITS = [
    # The issue's example: Yunnan rural, concentrated, grade 1, no income: 832 + 835.
    (YUNNAN, "rural", "concentrated", 1, ["0"], "832.00", "835.00", "1667.00"),
    (YUNNAN, "urban", "concentrated", 2, ["200"], "632.00", "418.00", "1050.00"),  # 832-200
    (YUNNAN, "rural", "concentrated", 3, ["300", "0"], "1364.00", "251.00", "1615.00"),  # 1664-300
    (YUNNAN, "rural", "dispersed", None, ["100"], "732.00", None, "732.00"),
    (YUNNAN, "urban", None, None, ["0"], "832.00", None, "832.00"),
    (JIANGXI, "rural", "concentrated", None, ["0"], "505.00", None, "505.00"),
    (JIANGXI, "rural", "concentrated", None, ["300"], "205.00", None, "205.00"),  # 505-300
    (JIANGXI, "rural", "dispersed", None, ["100"], "300.00", None, "300.00"),  # 400-100
    (JIANGXI, "rural", None, None, ["100"], "300.00", None, "300.00"),  # default: dispersed
    (JIANGXI, "rural", "concentrated", 1, ["105"], "400.00", "1200.00", "1600.00"),  # 505-105
    (JIANGXI, "urban", "concentrated", 2, ["35"], "800.00", "300.00", "1100.00"),  # 835-35
    (JIANGXI, "urban", "dispersed", None, ["35"], "800.00", None, "800.00"),
]


@pytest.mark.parametrize(
    ("region", "area", "mode", "grade", "declared", "top_up", "care", "amount"), BENEFITS
)
def test_hand_computed_benefits(
    region: str,
    area: Area,
    mode: SupportMode | None,
    grade: CareGrade | None,
    declared: list[str],
    top_up: str,
    care: str | None,
    amount: str,
) -> None:
    _, assessment = tekun_case(
        declared, region=region, area=area, support_mode=mode, care_grade=grade
    )
    assert assessment.recommendation == "eligible"
    benefit = assessment.benefit
    assert benefit is not None
    assert str(benefit.monthly_amount) == amount
    assert (str(benefit.care_subsidy) if benefit.care_subsidy is not None else None) == care
    assert benefit.basis is not None
    lines = benefit.basis.split("\n")
    assert lines[0].endswith(f"= {top_up} 元")
    if care is None:
        assert len(lines) == 1
        assert "care_subsidy" not in benefit.model_dump()
    else:
        assert len(lines) == 3
        assert care in lines[1]
        assert lines[2] == f"每月合计 {top_up} 元 + {care} 元 = {amount} 元"


def test_the_issue_example_reads_as_three_lines_in_english() -> None:
    inputs, _ = tekun_case(
        ["0"], region=YUNNAN, area="rural", support_mode="concentrated", care_grade=1
    )
    benefit = assess(inputs, policy(YUNNAN, "tekun", "rural"), language="en").benefit
    assert benefit is not None
    assert benefit.basis == (
        "832.00 × 1 (household size) − household monthly income 0.00 = 832.00 yuan\n"
        "care subsidy (concentrated support, grade 1) 835.00 yuan\n"
        "monthly total 832.00 + 835.00 = 1667.00 yuan"
    )


def test_the_dibao_standard_decides_the_income_test_the_arrangement_the_amount() -> None:
    """Jiangxi rural: 特困 income must be below the local dibao standard (385), whatever
    the arrangement's support standard (505 concentrated, 400 dispersed); below it, the
    arrangement's standard sets the top-up."""
    for mode in ("concentrated", "dispersed"):
        _, above = tekun_case(["385"], region=JIANGXI, area="rural", support_mode=mode)
        assert above.recommendation == "ineligible"
        assert "385.00" in above.findings[0].message  # the standard the test used
    _, concentrated = tekun_case(["300"], region=JIANGXI, area="rural", support_mode="concentrated")
    _, dispersed = tekun_case(["300"], region=JIANGXI, area="rural", support_mode="dispersed")
    assert (concentrated.recommendation, dispersed.recommendation) == ("eligible", "eligible")
    assert concentrated.benefit is not None
    assert dispersed.benefit is not None
    assert str(concentrated.benefit.monthly_amount) == "205.00"
    assert str(dispersed.benefit.monthly_amount) == "100.00"


def test_the_care_subsidy_is_paid_once_not_per_member() -> None:
    """Yunnan rural, 2 members, no income: 832 × 2 + 835 (the supported person's grade)."""
    _, assessment = tekun_case(
        ["0", "0"], region=YUNNAN, area="rural", support_mode="concentrated", care_grade=1
    )
    assert assessment.benefit is not None
    assert str(assessment.benefit.monthly_amount) == "2499.00"


def test_no_care_subsidy_without_eligibility() -> None:
    _, assessment = tekun_case(
        ["900"], region=YUNNAN, area="rural", support_mode="concentrated", care_grade=1
    )
    assert assessment.recommendation == "ineligible"
    assert assessment.benefit is None


def test_a_contributing_pension_with_a_care_grade_still_pays() -> None:
    """The 特困 rule and the arrangement together: contributing is a note only."""
    applicant = person(70)
    contributing = PensionRecord(
        id_number=applicant, status="contributing", monthly_amount=Decimal(0)
    )
    inputs = household(
        [member(applicant)], {"pensions": [contributing]}, program="tekun", area="rural"
    ).model_copy(update={"support_mode": "concentrated", "care_grade": 1})
    assessment = assess(inputs, policy(YUNNAN, "tekun", "rural"))
    assert assessment.recommendation == "eligible"
    assert assessment.benefit is not None
    assert str(assessment.benefit.monthly_amount) == "1667.00"


# (region, program, area, mode, grade, field the refusal names)
UNDEFINED = [
    (YUNNAN, "tekun", "rural", "dispersed", 1, "care_grade"),  # dispersed: carer paid, no figure
    (JIANGXI, "tekun", "rural", "concentrated", 3, "care_grade"),  # 全自理: 未作安排
    (JIANGXI, "tekun", "urban", "dispersed", 2, "care_grade"),
    (YUNNAN, "tekun", "urban", None, 1, "care_grade"),  # a grade needs an arrangement
    ("110105", "tekun", "urban", "concentrated", 1, "care_grade"),  # placeholders: no subsidies
    (YUNNAN, "dibao", "urban", "concentrated", None, "support_mode"),  # tekun only
    (YUNNAN, "linshi", "urban", None, 2, "care_grade"),
]


@pytest.mark.parametrize(("region", "program", "area", "mode", "grade", "field"), UNDEFINED)
def test_a_combination_the_policy_does_not_define_is_refused(
    region: str,
    program: Program,
    area: Area,
    mode: SupportMode | None,
    grade: CareGrade | None,
    field: str,
) -> None:
    with pytest.raises(ArrangementError) as caught:
        arrangement(policy(region, program, area), mode, grade)
    assert caught.value.field == field
    with pytest.raises(ArrangementError):
        tekun_case(
            ["0"], region=region, area=area, support_mode=mode, care_grade=grade, program=program
        )


def test_a_mode_missing_from_per_mode_standards_is_refused() -> None:
    only_concentrated = policy(
        JIANGXI, "tekun", "rural", support_mode_standards={"concentrated": Decimal(505)}
    )
    with pytest.raises(ArrangementError, match="dispersed") as caught:
        arrangement(only_concentrated, "dispersed", None)
    assert caught.value.field == "support_mode"
    assert arrangement(only_concentrated, None, None).monthly_standard == 400


def test_new_figures_stay_out_of_older_versions_dumps() -> None:
    """Absent figures leave the dump (and the content hash) as it was before they existed."""
    dibao = policy(YUNNAN, "dibao", "urban").model_dump(mode="json")
    assert "support_mode_standards" not in dibao
    assert "care_subsidies" not in dibao
    tekun = policy(JIANGXI, "tekun", "rural").model_dump(mode="json")
    assert tekun["support_mode_standards"] == {"concentrated": "505.00", "dispersed": "400.00"}
    assert tekun["care_subsidies"] == {"concentrated": {"1": "1200.00", "2": "300.00"}}


@pytest.mark.parametrize(
    "figure",
    [
        "care_subsidies = { concentrated = { 1 = 100 } }",
        "support_mode_standards = { dispersed = 400 }",
    ],
)
def test_arrangement_figures_in_a_version_beyond_tekun_are_refused(
    tmp_path: Path, figure: str
) -> None:
    (tmp_path / "36.toml").write_text(
        f"""
[[versions]]
program = ["dibao", "tekun"]
area = "rural"
effective_from = 2019-01-01
monthly_standard = 385
{figure}
""",
        encoding="utf-8",
    )
    with pytest.raises(PolicyFileError, match="tekun only") as caught:
        PolicyCatalog.load(tmp_path)
    assert caught.value.file == "36.toml"


def test_a_care_grade_outside_1_to_3_in_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "53.toml").write_text(
        """
[[versions]]
program = "tekun"
area = "rural"
effective_from = 2020-06-01
monthly_standard = 832
care_subsidies = { concentrated = { 4 = 100 } }
""",
        encoding="utf-8",
    )
    with pytest.raises(PolicyFileError) as caught:
        PolicyCatalog.load(tmp_path)
    assert caught.value.field is not None
    assert caught.value.field.startswith("versions[0].care_subsidies")
