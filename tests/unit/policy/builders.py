"""Builders for households, sources and policies used across the policy tests."""

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

from schemas.assessment import (
    AssessmentInput,
    HouseholdMember,
    NearRelativeMatch,
    SourceOutcome,
)
from schemas.evidence import Record
from schemas.identity import check_character
from schemas.policy import PolicyParameters
from schemas.verification import Area, Program, SourceStatus
from service.policy.catalog import PolicyCatalog
from service.policy.facts import HouseholdFacts, derive_facts

# The shipped files plus an illustrative county override (530111, urban dibao 700 from
# 2024) that lives with the tests: hedui ships no invented figure for a real county.
EXAMPLES = Path(__file__).parent / "examples"
CATALOG = PolicyCatalog.load(local=EXAMPLES)
AS_OF = date(2026, 11, 20)
SOURCES = ("bank", "housing_fund", "pensions", "public_payroll", "real_estate", "vehicles")
YUNNAN = "530103"  # a Yunnan county without a county file: the provincial figures apply
JIANGXI = "360102"


def person(sequence: int, region: str = "530103", birth: str = "19800101") -> str:
    """A valid GB 11643 ID number; distinct sequences give distinct people."""
    first17 = f"{region}{birth}{sequence % 1000:03d}"
    return first17 + check_character(first17)


def member(
    id_number: str, declared: Decimal | int | str = 0, name: str = "张三"
) -> HouseholdMember:
    return HouseholdMember(id_number=id_number, name=name, declared_monthly_income=declared)


def household(
    members: Iterable[HouseholdMember],
    records: Mapping[str, Iterable[Record]] | None = None,
    statuses: Mapping[str, SourceStatus | str] | None = None,
    *,
    program: Program = "dibao",
    area: Area = "urban",
    near_relatives: Iterable[NearRelativeMatch] = (),
    sources: Iterable[str] = SOURCES,
) -> AssessmentInput:
    """A household checked against `sources`; a source with records is ok, else no_record."""
    records = records or {}
    statuses = statuses or {}
    names = list(dict.fromkeys([*sources, *records]))
    return AssessmentInput(
        program=program,
        area=area,
        as_of=AS_OF,
        members=tuple(members),
        sources=tuple(
            SourceOutcome(
                source=name,
                status=SourceStatus(statuses.get(name, "ok" if records.get(name) else "no_record")),
                records=tuple(records.get(name, ())),
            )
            for name in names
        ),
        near_relatives=tuple(near_relatives),
    )


def policy(
    region: str = YUNNAN,
    program: Program = "dibao",
    area: Area = "urban",
    as_of: date = AS_OF,
    **overrides: object,
) -> PolicyParameters:
    resolved = CATALOG.resolve(region, program, area, as_of)
    assert resolved is not None
    return resolved.parameters.model_copy(update=overrides) if overrides else resolved.parameters


def facts_of(inputs: AssessmentInput, parameters: PolicyParameters | None = None) -> HouseholdFacts:
    return derive_facts(inputs, parameters or policy(program=inputs.program, area=inputs.area))
