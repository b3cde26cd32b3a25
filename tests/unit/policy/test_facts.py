"""What counts as income and as financial assets."""

from decimal import Decimal

import pytest

from schemas.evidence import (
    AssetRecord,
    BankAccountRecord,
    HousingFundRecord,
    IncomeRecord,
    PayrollRecord,
    PensionRecord,
    VehicleRecord,
)
from service.policy.facts import describe

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

    def test_declared_income_counts_only_where_no_source_covers_the_member(self) -> None:
        """A's pension replaces A's declaration; B's declaration stands."""
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
        assert facts.monthly_income == Decimal("500")
        assert [line.source for line in facts.income_lines] == ["pensions", "declared"]

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
        assert facts.monthly_income == Decimal("0")
        assert facts.covered == {0}

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
