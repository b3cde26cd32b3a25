"""What counts as income and as financial assets."""

from datetime import date
from decimal import Decimal
from typing import get_args

import pytest

from schemas.evidence import (
    AssetRecord,
    BankAccountRecord,
    BusinessRecord,
    HousingFundRecord,
    IncomeRecord,
    PayrollRecord,
    PensionRecord,
    PropertyRecord,
    Record,
    SocialInsuranceRecord,
    TaxedIncomeRecord,
    VehicleRecord,
)
from schemas.identity import redact_id_numbers
from service.policy.facts import _fact_value, describe

from .builders import facts_of, household, member, person, policy

A, B, OUTSIDER = person(1), person(2), person(3)


class TestIncome:
    def test_pension_being_received_counts(self) -> None:
        facts = facts_of(
            household(
                [member(A)],
                {
                    "pensions": [
                        PensionRecord(
                            id_number=A, status="receiving", monthly_amount=Decimal("1200")
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("1200")
        assert facts.covered == {0}

    def test_contributing_pension_is_not_income_and_does_not_cover(self) -> None:
        facts = facts_of(
            household(
                [member(A, 300)],
                {
                    "pensions": [
                        PensionRecord(
                            id_number=A, status="contributing", monthly_amount=Decimal("400")
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("300")  # the declaration still counts
        assert facts.covered == set()

    def test_payroll_salary_counts(self) -> None:
        facts = facts_of(
            household(
                [member(A)],
                {
                    "public_payroll": [
                        PayrollRecord(id_number=A, employer="某局", monthly_salary=Decimal("4500"))
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("4500")

    def test_housing_fund_deposit_implies_a_wage(self) -> None:
        """600 deposited a month at 12% + 12% means a 2500 wage."""
        facts = facts_of(
            household(
                [member(A)],
                {
                    "housing_fund": [
                        HousingFundRecord(
                            id_number=A,
                            status="active",
                            balance=Decimal("8000"),
                            monthly_deposit=Decimal("600"),
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("2500.00")
        assert "implied_wage=2500.00" in facts.income_lines[0].fact

    def test_contribution_rate_is_a_parameter(self) -> None:
        inputs = household(
            [member(A)],
            {
                "housing_fund": [
                    HousingFundRecord(
                        id_number=A,
                        status="active",
                        balance=Decimal("0"),
                        monthly_deposit=Decimal("600"),
                    )
                ]
            },
        )
        facts = facts_of(inputs, policy(housing_fund_contribution_rate=Decimal("0.20")))
        assert facts.monthly_income == Decimal("3000.00")

    def test_implied_wage_rounds_to_fen(self) -> None:
        facts = facts_of(
            household(
                [member(A)],
                {
                    "housing_fund": [
                        HousingFundRecord(
                            id_number=A,
                            status="active",
                            balance=Decimal("0"),
                            monthly_deposit=Decimal("100"),
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("416.67")

    def test_implied_wage_only_adds_what_exceeds_recorded_wages(self) -> None:
        """Payroll 2000 and a deposit implying 2500: the same job, so 2500 in all, not 4500."""
        facts = facts_of(
            household(
                [member(A)],
                {
                    "public_payroll": [
                        PayrollRecord(id_number=A, employer="某局", monthly_salary=Decimal("2000"))
                    ],
                    "housing_fund": [
                        HousingFundRecord(
                            id_number=A,
                            status="active",
                            balance=Decimal("0"),
                            monthly_deposit=Decimal("600"),
                        )
                    ],
                },
            )
        )
        assert facts.monthly_income == Decimal("2500.00")

    @pytest.mark.parametrize("category", ["wage", "Salary", "工资", " 工资薪金 "])
    def test_implied_wage_below_recorded_wages_adds_nothing(self, category: str) -> None:
        """A partner that calls a wage 工资 (a declarative connector passes its words on)
        records the same job's wage the housing-fund deposit implies: not counted twice."""
        facts = facts_of(
            household(
                [member(A)],
                {
                    "tax": [
                        IncomeRecord(id_number=A, category=category, monthly_amount=Decimal("3000"))
                    ],
                    "housing_fund": [
                        HousingFundRecord(
                            id_number=A,
                            status="active",
                            balance=Decimal("0"),
                            monthly_deposit=Decimal("600"),
                        )
                    ],
                },
            )
        )
        assert facts.monthly_income == Decimal("3000")

    def test_closed_housing_fund_is_not_income(self) -> None:
        facts = facts_of(
            household(
                [member(A, 100)],
                {
                    "housing_fund": [
                        HousingFundRecord(
                            id_number=A,
                            status="closed",
                            balance=Decimal("9000"),
                            monthly_deposit=Decimal("600"),
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("100")
        assert facts.covered == set()

    def test_generic_income_record_counts(self) -> None:
        facts = facts_of(
            household(
                [member(A)],
                {
                    "business": [
                        IncomeRecord(
                            id_number=A, category="business", monthly_amount=Decimal("800.50")
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("800.50")

    def test_a_member_s_income_is_the_larger_of_declared_and_verified(self) -> None:
        """A declared 999 and a pension of 300 is on record: A's income is 999 (the pension,
        and the 699 no source holds); B's declaration stands alone."""
        facts = facts_of(
            household(
                [member(A, 999), member(B, 200)],
                {
                    "pensions": [
                        PensionRecord(
                            id_number=A, status="receiving", monthly_amount=Decimal("300")
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("1199")
        assert [(line.source, line.amount) for line in facts.income_lines] == [
            ("pensions", Decimal("300")),
            ("declared", Decimal("699")),
            ("declared", Decimal("200")),
        ]
        assert facts.covered == {0}

    def test_a_declaration_below_the_records_adds_nothing(self) -> None:
        """The records show more than declared: they count, and nothing is added."""
        facts = facts_of(
            household(
                [member(A, 100)],
                {
                    "pensions": [
                        PensionRecord(
                            id_number=A, status="receiving", monthly_amount=Decimal("300")
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("300")
        assert [line.source for line in facts.income_lines] == ["pensions"]

    def test_coverage_does_not_depend_on_the_amount(self) -> None:
        """A zero pension still covers the member: the records, not their size, decide."""
        facts = facts_of(
            household(
                [member(A, 500)],
                {
                    "pensions": [
                        PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("0"))
                    ]
                },
            )
        )
        assert facts.covered == {0}
        # Covered, and the declaration above the records still counts.
        assert facts.monthly_income == Decimal("500")

    def test_records_of_non_members_are_ignored(self) -> None:
        facts = facts_of(
            household(
                [member(A)],
                {
                    "pensions": [
                        PensionRecord(
                            id_number=OUTSIDER, status="receiving", monthly_amount=Decimal("900")
                        )
                    ]
                },
            )
        )
        assert facts.monthly_income == Decimal("0")
        assert facts.records == ()


class TestFinancialAssets:
    def test_bank_balances_and_financial_assets_count(self) -> None:
        facts = facts_of(
            household(
                [member(A), member(B)],
                {
                    "bank": [
                        BankAccountRecord(
                            id_number=A, bank="某银行", account="****1234", balance=Decimal("3000")
                        ),
                        BankAccountRecord(
                            id_number=B, bank="某银行", account="****5678", balance=Decimal("0.50")
                        ),
                    ],
                    "securities": [
                        AssetRecord(id_number=B, category="stocks", value=Decimal("1000"))
                    ],
                },
            )
        )
        assert facts.financial_assets == Decimal("4000.50")

    def test_housing_fund_balance_and_non_financial_assets_do_not_count(self) -> None:
        facts = facts_of(
            household(
                [member(A)],
                {
                    "housing_fund": [
                        HousingFundRecord(
                            id_number=A,
                            status="closed",
                            balance=Decimal("50000"),
                            monthly_deposit=Decimal("0"),
                        )
                    ],
                    "assets": [
                        AssetRecord(
                            id_number=A,
                            category="livestock",
                            value=Decimal("8000"),
                            financial=False,
                        )
                    ],
                },
            )
        )
        assert facts.financial_assets == Decimal("0")


class TestOrder:
    def test_records_in_member_order_then_source_name(self) -> None:
        inputs = household(
            [member(A), member(B)],
            {
                "vehicles": [
                    VehicleRecord(id_number=B, plate="云A2", type="car", value=Decimal("1")),
                    VehicleRecord(id_number=A, plate="云A1", type="car", value=Decimal("1")),
                ],
                "bank": [
                    BankAccountRecord(
                        id_number=B, bank="b", account="****0001", balance=Decimal("1")
                    )
                ],
            },
        )
        facts = facts_of(inputs)
        assert [(item.member, item.source) for item in facts.records] == [
            (0, "vehicles"),
            (1, "bank"),
            (1, "vehicles"),
        ]


class TestDescribe:
    def test_fact_never_names_the_owner_and_masks_accounts(self) -> None:
        record = BankAccountRecord(
            id_number=A, bank="中国工商银行", account="6222020200112233", balance=Decimal("3000")
        )
        fact = describe(record)
        assert fact == "bank_account bank=中国工商银行 account=************2233 balance=3000.00"
        assert A not in fact

    def test_vehicle_fact(self) -> None:
        record = VehicleRecord(id_number=A, plate="云A12345", type="car", value=Decimal("85000"))
        assert describe(record) == "vehicle plate=云A12345 type=car value=85000.00"


def _dumped_description(record: Record) -> str:
    """`describe` as it was first written, over the record's `model_dump`."""
    parts: list[str] = [record.kind]
    for name, value in record.model_dump(exclude={"id_number", "kind"}).items():
        if value is not None:
            parts.append(f"{name}={_fact_value(name, value)}")
    return redact_id_numbers(" ".join(parts))


EVERY_KIND: list[Record] = [
    VehicleRecord(
        id_number=A, plate="云A12345", type="car", registered_on=date(2020, 5, 1), value=Decimal(1)
    ),
    VehicleRecord(id_number=A, plate="云A12345", type="motorcycle"),
    PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("1200.5")),
    HousingFundRecord(
        id_number=A, status="active", balance=Decimal("9000"), monthly_deposit=Decimal("300")
    ),
    PropertyRecord(
        id_number=A,
        certificate="云(2022)不动产权第3341427号",
        usage="residential",
        area_m2=Decimal("59.8"),
        region_code="530103",
    ),
    PayrollRecord(id_number=A, employer="县人民医院", monthly_salary=Decimal("5100.00")),
    BankAccountRecord(id_number=A, bank="某银行", account="6222020200112233", balance=Decimal(0)),
    IncomeRecord(id_number=A, category=f"rent from {B}", monthly_amount=Decimal("800")),
    AssetRecord(id_number=A, category="livestock", value=Decimal("3000"), financial=False),
    BusinessRecord(
        id_number=A,
        company="某商贸有限公司",
        credit_code="91530103MA6K0000X1",
        role="shareholder",
        registered_capital=Decimal("100000"),
        share_ratio=Decimal("0.25"),
    ),
    BusinessRecord(
        id_number=A, company="某合作社", role="legal_representative", registered_capital=Decimal(0)
    ),
    TaxedIncomeRecord(id_number=A, year=2025, annual_amount=Decimal("36000")),
    SocialInsuranceRecord(
        id_number=A, employer="县第一中学", status="contributing", monthly_base=Decimal("4500")
    ),
    SocialInsuranceRecord(id_number=A, status="suspended", monthly_base=Decimal("0")),
]


class TestDescribeReadsFields:
    def test_every_kind_of_record_is_covered(self) -> None:
        kinds = {type(record) for record in EVERY_KIND}
        assert kinds == set(get_args(get_args(Record)[0]))

    @pytest.mark.parametrize("record", EVERY_KIND, ids=lambda record: record.kind)
    def test_same_fact_as_the_records_dump(self, record: Record) -> None:
        """The fields read one by one give the text the record's dump gave."""
        assert describe(record) == _dumped_description(record)
