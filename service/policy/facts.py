"""Facts derived from one household's stored source records: what the rules reason about.

Pure: reads an AssessmentInput and the parameters, returns plain values. The order of
everything here is fixed (members as given; then sources by name; then records as stored)
so that findings come out in the same order on every run.

Counting choices, each a deliberate policy decision:
- Income per member: pensions being received, payroll salaries and any generic income
  record count in full. A housing-fund deposit implies a wage (deposit ÷ contribution rate);
  it is the same job's wage as a payroll or wage record ("wage", "salary", "工资", ...:
  `WAGE_CATEGORIES`), so it only adds what it
  exceeds those recorded wages by (never double-counted).
- A member's declared income counts whole when no source covers that member's income, i.e.
  no pension being received, payroll, active housing fund or income record exists for them
  (whatever the amount: coverage depends on which records exist, not on their size). When
  sources do cover it, what the member declared above what they verify counts too (a
  `declared` line for the rest): the household's own statement of an income no partner
  holds (informal work, help from relatives) is never set aside because a smaller one is
  on record. A member's income is the larger of the two, never the smaller.
- Financial assets: bank balances and generic assets marked financial. A housing-fund
  balance is NOT a financial asset: it is locked until retirement, purchase or departure
  and cannot pay for living costs; it is reported as information instead.
- Records of people who are not household members are ignored: they belong to no one here.
- A property is counted once however many members own it: the real-estate registry answers
  per person, so a flat a couple own together (共同共有) comes back once for each, with the
  same certificate. Records with the same certificate number in the same region are one
  property (every co-owner's record stays its evidence); a record without a certificate
  number is a property of its own (never merged by a guess: two flats are never one).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, cached_property
from typing import TypeVar

from pydantic import BaseModel

from schemas.assessment import (
    AssessmentInput,
    HouseholdMember,
    NearRelativeMatch,
    SourceOutcome,
)
from schemas.evidence import (
    AssetRecord,
    BankAccountRecord,
    HousingFundRecord,
    IncomeRecord,
    PayrollRecord,
    PensionRecord,
    PropertyRecord,
    Record,
)
from schemas.identity import mask_account, mask_id_number, redact_id_numbers
from schemas.money import format_money, to_cents
from schemas.policy import PolicyParameters
from schemas.report import EvidenceRef

DECLARED = "declared"
"""Pseudo-source name for income the household declared itself."""
WAGE_CATEGORIES = frozenset(
    {
        "wage",
        "wages",
        "salary",
        "salaries",
        "wage income",
        "wages and salaries",
        "工资",
        "工资收入",
        "工资性收入",  # the statistical term (国家统计局)
        "工薪",
        "工薪收入",
        "薪金",
        "薪资",
        "薪酬",
        "工资薪金",
        "劳动报酬",
    }
)
"""Income categories that are a job's wage, in the words a partner may use (a declarative
connector passes its partner's category through): compared trimmed and lower-cased."""


def is_wage(category: str) -> bool:
    return category.strip().lower() in WAGE_CATEGORIES


_R = TypeVar("_R")


@dataclass(frozen=True)
class SourcedRecord:
    source: str
    member: int
    """Index into the household's members."""
    record: Record


@dataclass(frozen=True)
class IncomeLine:
    member: int
    source: str
    category: str
    amount: Decimal
    fact: str


@dataclass(frozen=True)
class HouseholdFacts:
    members: tuple[HouseholdMember, ...]
    sources: tuple[SourceOutcome, ...]
    """Sorted by source name."""
    records: tuple[SourcedRecord, ...]
    """Member order, then source name, then stored order."""
    income_lines: tuple[IncomeLine, ...]
    covered: frozenset[int]
    """Members whose income some source covers (their declaration does not count)."""
    near_relatives: tuple[NearRelativeMatch, ...] = ()
    as_of: date | None = None
    """The day the household is assessed on (ages are counted to it)."""
    care_grade: int | None = None
    """A tekun request's self-care grade (1 unable, 2 partly able, 3 able)."""

    @property
    def size(self) -> int:
        return len(self.members)

    # The facts are frozen, and the rules, the summary, the score and the benefit each ask
    # for the same totals: each is worked out once (cached_property writes the instance's
    # own __dict__, which a frozen dataclass allows): some 25 µs a household.
    @cached_property
    def complete(self) -> bool:
        """Every source answered reliably (and there was at least one)."""
        return bool(self.sources) and all(source.status.settled for source in self.sources)

    @cached_property
    def monthly_income(self) -> Decimal:
        return sum((line.amount for line in self.income_lines), Decimal(0))

    @cached_property
    def financial_assets(self) -> Decimal:
        return sum((value for _, value in self.financial_asset_items()), Decimal(0))

    @cached_property
    def _masked(self) -> tuple[str, ...]:
        return tuple(mask_id_number(member.id_number) for member in self.members)

    def masked(self, member: int) -> str:
        return self._masked[member]

    def of_type(self, kind: type[_R]) -> Iterator[tuple[SourcedRecord, _R]]:
        for item in self.records:
            if isinstance(item.record, kind):
                yield item, item.record

    def properties(self) -> list[list[tuple[SourcedRecord, PropertyRecord]]]:
        """The household's properties, each with the records of every member who owns it
        (see the module: one certificate, one property), in the order first seen."""
        return [list(owners) for owners in self._properties]

    @cached_property
    def _properties(self) -> tuple[tuple[tuple[SourcedRecord, PropertyRecord], ...], ...]:
        grouped: dict[object, list[tuple[SourcedRecord, PropertyRecord]]] = {}
        for item, record in self.of_type(PropertyRecord):
            number = record.certificate.strip()
            key: object = (number, record.region_code) if number else object()
            grouped.setdefault(key, []).append((item, record))
        return tuple(tuple(owners) for owners in grouped.values())

    def financial_asset_items(self) -> Iterator[tuple[SourcedRecord, Decimal]]:
        for item in self.records:
            record = item.record
            if isinstance(record, BankAccountRecord):
                yield item, record.balance
            elif isinstance(record, AssetRecord) and record.financial:
                yield item, record.value

    def evidence(self, item: SourcedRecord, fact: str | None = None) -> EvidenceRef:
        return EvidenceRef(
            source=item.source,
            member=self.masked(item.member),
            # `describe` writes its text redacted already.
            fact=describe(item.record) if fact is None else redact_id_numbers(fact),
        )


def derive_facts(inputs: AssessmentInput, policy: PolicyParameters) -> HouseholdFacts:
    sources = tuple(sorted(inputs.sources, key=lambda source: source.source))
    position = {member.id_number.upper(): index for index, member in enumerate(inputs.members)}
    found = [
        SourcedRecord(source.source, position[record.id_number.upper()], record)
        for source in sources
        for record in source.records
        if record.id_number.upper() in position
    ]
    records = tuple(sorted(found, key=lambda item: item.member))  # stable: keeps source order
    lines: list[IncomeLine] = []
    covered: set[int] = set()
    for index, member in enumerate(inputs.members):
        own = [item for item in records if item.member == index]
        member_lines = _sourced_income(index, own, policy)
        if member_lines:
            covered.add(index)
            lines.extend(member_lines)
            verified = sum((line.amount for line in member_lines), Decimal(0))
            rest = member.declared_monthly_income - verified
            if rest > 0:
                lines.append(
                    IncomeLine(
                        index,
                        DECLARED,
                        DECLARED,
                        rest,
                        f"declared monthly_income={format_money(member.declared_monthly_income)} "
                        f"verified={format_money(verified)} counted={format_money(rest)} "
                        "(declared above what the sources verify)",
                    )
                )
        elif member.declared_monthly_income > 0:
            amount = member.declared_monthly_income
            lines.append(
                IncomeLine(
                    index,
                    DECLARED,
                    DECLARED,
                    amount,
                    f"declared monthly_income={format_money(amount)} "
                    "(no source covers this member's income)",
                )
            )
    return HouseholdFacts(
        members=inputs.members,
        sources=sources,
        records=records,
        income_lines=tuple(lines),
        covered=frozenset(covered),
        near_relatives=inputs.near_relatives,
        as_of=inputs.as_of,
        care_grade=inputs.care_grade,
    )


def _sourced_income(
    member: int, own: list[SourcedRecord], policy: PolicyParameters
) -> list[IncomeLine]:
    lines: list[IncomeLine] = []
    recorded_wages = Decimal(0)
    deposits: list[SourcedRecord] = []
    for item in own:
        record = item.record
        if isinstance(record, PensionRecord) and record.status == "receiving":
            lines.append(
                IncomeLine(member, item.source, "pension", record.monthly_amount, describe(record))
            )
        elif isinstance(record, PayrollRecord):
            recorded_wages += record.monthly_salary
            lines.append(
                IncomeLine(member, item.source, "payroll", record.monthly_salary, describe(record))
            )
        elif isinstance(record, IncomeRecord):
            if is_wage(record.category):
                recorded_wages += record.monthly_amount
            lines.append(
                IncomeLine(
                    member, item.source, record.category, record.monthly_amount, describe(record)
                )
            )
        elif isinstance(record, HousingFundRecord) and record.status == "active":
            deposits.append(item)
    if deposits:
        rate = policy.housing_fund_contribution_rate
        total = sum((_deposit(item) for item in deposits), Decimal(0))
        implied = to_cents(total / rate)
        counted = max(Decimal(0), implied - recorded_wages)
        fact = (
            f"housing_fund monthly_deposit={format_money(total)} rate={rate} "
            f"implied_wage={format_money(implied)} "
            f"recorded_wages={format_money(recorded_wages)} counted={format_money(counted)}"
        )
        lines.append(IncomeLine(member, deposits[0].source, "housing_fund_wage", counted, fact))
    return lines


def _deposit(item: SourcedRecord) -> Decimal:
    record = item.record
    return record.monthly_deposit if isinstance(record, HousingFundRecord) else Decimal(0)


def describe(record: Record) -> str:
    """A compact, language-neutral statement of one stored record: `kind field=value ...`.

    Amounts are written with two decimals; the owner's ID number is left out (the evidence
    names the member masked) and account numbers keep their last four digits only.
    """
    parts: list[str] = [record.kind]
    # The fields read directly, not through `model_dump` (records are flat and dump their
    # values as they are): 5.0 → 2.5 µs a record, some nine records a household.
    for name in _described_fields(type(record)):
        value = getattr(record, name)
        if value is not None:
            parts.append(f"{name}={_fact_value(name, value)}")
    return redact_id_numbers(" ".join(parts))


@cache
def _described_fields(kind: type[BaseModel]) -> tuple[str, ...]:
    """A record class's fields in declaration order (the order `model_dump` gives), the
    owner's ID number and the kind left out."""
    return tuple(name for name in kind.model_fields if name not in ("id_number", "kind"))


def _fact_value(name: str, value: object) -> str:
    if name == "account":
        return mask_account(str(value))
    if isinstance(value, Decimal):
        return format_money(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
