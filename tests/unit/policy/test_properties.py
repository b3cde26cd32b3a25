"""Properties of the scorer over generated households (hypothesis)."""

import hashlib
import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.assessment import AssessmentInput, HouseholdMember, NearRelativeMatch, SourceOutcome
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
from schemas.money import CENT
from schemas.policy import PolicyParameters, ResolvedPolicy
from schemas.report import Assessment
from schemas.verification import Area, Program, SourceStatus
from service.policy import assess
from service.policy.facts import derive_facts
from service.report.service import (
    build_report,
    canonical_json,
    report_hash,
    row_values,
)

from .builders import AS_OF, CATALOG, person

# Enough examples to find a counterexample to any of these rules quickly, few enough that
# the whole policy suite stays within a few seconds.
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CASES: list[tuple[str, Program, Area]] = [
    ("530103", "dibao", "urban"),
    ("530103", "dibao", "rural"),
    ("530103", "tekun", "urban"),
    ("360102", "tekun", "rural"),
    ("360102", "linshi", "urban"),
    ("530111", "dibao", "urban"),
    ("110105", "linshi", "rural"),  # national placeholders
]
POLICIES = [
    resolved.parameters
    for region, program, area in CASES
    if (resolved := CATALOG.resolve(region, program, area, AS_OF)) is not None
]
GENERATED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
UNSETTLED = [SourceStatus.error, SourceStatus.timeout, SourceStatus.pending]


def money(high: int) -> st.SearchStrategy[Decimal]:
    """Amounts from 0 to `high` yuan, spread evenly over the range, with odd fen.

    Built from a coarse step (0–1000 thousandths of `high`) plus 0–99 fen rather than from
    one big integer: hypothesis favours small integers, so amounts near the income and asset
    limits would hardly ever be tried. (Also much cheaper to generate than st.decimals.)
    """
    top = Decimal(high)

    def amount(step: int, fen: int) -> Decimal:
        return min(top, top * step / 1000 + Decimal(fen) / 100).quantize(CENT)

    return st.builds(amount, st.integers(0, 1000), st.integers(0, 99))


_OWNER = "000000000000000000"  # replaced by a member's ID after drawing (see record_for)
_RECORDS: dict[str, st.SearchStrategy[Any]] = {
    "vehicles": st.builds(
        VehicleRecord,
        id_number=st.just(_OWNER),
        plate=st.just("云A12345"),
        type=st.sampled_from(["car", "motorcycle", "truck", "disability"]),
        value=st.one_of(st.none(), money(100_000)),  # None: no value on record
    ),
    "pensions": st.builds(
        PensionRecord,
        id_number=st.just(_OWNER),
        status=st.sampled_from(["receiving", "contributing", "none"]),
        monthly_amount=money(3000),
    ),
    "housing_fund": st.builds(
        HousingFundRecord,
        id_number=st.just(_OWNER),
        status=st.sampled_from(["active", "closed"]),
        balance=money(50_000),
        monthly_deposit=money(1500),
    ),
    "real_estate": st.builds(
        PropertyRecord,
        id_number=st.just(_OWNER),
        certificate=st.just("C1"),
        usage=st.sampled_from(["residential", "commercial", "land"]),
        area_m2=st.just(Decimal("80")),
        region_code=st.just("530103"),
    ),
    "public_payroll": st.builds(
        PayrollRecord,
        id_number=st.just(_OWNER),
        employer=st.just("某局"),
        monthly_salary=money(6000),
    ),
    "bank": st.builds(
        BankAccountRecord,
        id_number=st.just(_OWNER),
        bank=st.just("某银行"),
        account=st.just("****1234"),
        balance=money(40_000),
    ),
    "tax": st.builds(
        IncomeRecord,
        id_number=st.just(_OWNER),
        category=st.sampled_from(["wage", "rental", "business"]),
        monthly_amount=money(3000),
    ),
    "securities": st.builds(
        AssetRecord,
        id_number=st.just(_OWNER),
        category=st.sampled_from(["stocks", "livestock"]),
        value=money(30_000),
        financial=st.booleans(),
    ),
}


def record_for(draw: st.DrawFn, source: str, owner: str) -> Record:
    # Strategies are built once above; building them per draw made the suite several times slower.
    record: Record = draw(_RECORDS[source]).model_copy(update={"id_number": owner})
    return record


SETTLED = st.sampled_from([SourceStatus.ok, SourceStatus.ok, SourceStatus.no_record])
DECLARED = st.one_of(st.just(Decimal(0)), money(1000))
# Small steps and large ones: a large one is what crosses an income or asset limit.
# How much richer, in multiples of the household's monthly standard (standard × members):
# small steps, steps that cross the income test, and steps that cross the asset limit
# (24 months by default). Sized to the household, so crossing a limit is common.
STEPS = st.sampled_from([Decimal("0.01"), Decimal("0.2"), Decimal("1.5"), Decimal("30")])
FEN = st.integers(1, 99).map(lambda fen: Decimal(fen) / 100)
OWNERS = st.sampled_from([0, 0, 1, 1, 2])
PLAIN_SOURCES = ("bank", "pensions", "securities", "tax")
SOURCE_NAMES = (
    "bank",
    "housing_fund",
    "pensions",
    "public_payroll",
    "real_estate",
    "securities",
    "tax",
    "vehicles",
)


@st.composite
def households(draw: st.DrawFn) -> tuple[AssessmentInput, PolicyParameters]:
    """A household and the policy it is assessed under.

    Half are "plain" households (all sources answered, only balances, received pensions and
    side income, no registered relative), which are often eligible; the rest may have any
    record, a failed source and a registered relative. Without the plain half, nearly every
    household is ineligible or under review and a rule that wrongly flips a household to
    eligible would seldom be exercised.
    """
    parameters = draw(st.sampled_from(POLICIES))
    plain = draw(st.booleans())
    numbers = draw(st.lists(st.integers(0, 999), min_size=1, max_size=4, unique=True))
    members = tuple(
        HouseholdMember(id_number=person(n), name="张三", declared_monthly_income=draw(DECLARED))
        for n in numbers
    )
    ids = [m.id_number for m in members]
    names = draw(
        st.lists(st.sampled_from(PLAIN_SOURCES if plain else SOURCE_NAMES), min_size=1, unique=True)
    )
    failing = not plain and draw(st.booleans())
    sources = []
    for position, name in enumerate(names):
        status = draw(st.sampled_from(UNSETTLED) if failing and position == 0 else SETTLED)
        count = 0 if status == SourceStatus.no_record else draw(OWNERS)
        owners = [draw(st.sampled_from(ids)) for _ in range(count)]
        records = tuple(record_for(draw, name, owner) for owner in owners)
        if plain:
            records = tuple(
                r for r in records if not isinstance(r, PensionRecord) or r.status == "receiving"
            )
        sources.append(SourceOutcome(source=name, status=status, records=records))
    relatives = [] if plain else draw(st.lists(st.sampled_from(ids), max_size=1))
    inputs = AssessmentInput(
        program=parameters.program,
        area=parameters.area,
        as_of=date(2026, 11, 20),
        members=members,
        sources=tuple(sources),
        near_relatives=tuple(
            NearRelativeMatch(id_number=i, staff_position="村委会主任", relationship="子女")
            for i in relatives
        ),
    )
    return inputs, parameters


def replace_source(inputs: AssessmentInput, index: int, source: SourceOutcome) -> AssessmentInput:
    sources = list(inputs.sources)
    sources[index] = source
    return inputs.model_copy(update={"sources": tuple(sources)})


@given(households(), st.data())
@PROPERTY
def test_missing_or_failed_source_is_never_eligible(
    case: tuple[AssessmentInput, PolicyParameters], data: st.DataObject
) -> None:
    inputs, parameters = case
    index = data.draw(st.integers(0, len(inputs.sources) - 1))
    status = data.draw(st.sampled_from(UNSETTLED))
    failed = inputs.sources[index].model_copy(update={"status": status})
    broken = replace_source(inputs, index, failed)
    assessment = assess(broken, parameters)
    assert assessment.complete is False
    assert assessment.recommendation != "eligible"
    assert assessment.benefit is None
    no_sources = inputs.model_copy(update={"sources": ()})
    assert assess(no_sources, parameters).recommendation != "eligible"


INCOME_FIELDS: dict[type, str] = {
    PensionRecord: "monthly_amount",
    PayrollRecord: "monthly_salary",
    IncomeRecord: "monthly_amount",
    HousingFundRecord: "monthly_deposit",
}
ASSET_FIELDS: dict[type, str] = {
    BankAccountRecord: "balance",
    AssetRecord: "value",
    VehicleRecord: "value",
}


def raise_amounts(
    inputs: AssessmentInput, fields: dict[type, str], extra: Decimal
) -> AssessmentInput:
    """Every record of the given kinds gets `extra` more in its amount field."""
    sources = []
    for source in inputs.sources:
        records = tuple(
            record.model_copy(update={field: getattr(record, field) + extra})
            if (field := fields.get(type(record))) and getattr(record, field) is not None
            else record
            for record in source.records
        )
        sources.append(source.model_copy(update={"records": records}))
    return inputs.model_copy(update={"sources": tuple(sources)})


def add_record(inputs: AssessmentInput, source_name: str, record: Record) -> AssessmentInput:
    for index, source in enumerate(inputs.sources):
        if source.source == source_name:
            status = SourceStatus.ok if source.status == SourceStatus.no_record else source.status
            updated = source.model_copy(
                update={"status": status, "records": (*source.records, record)}
            )
            return replace_source(inputs, index, updated)
    added = SourceOutcome(source=source_name, status=SourceStatus.ok, records=(record,))
    return inputs.model_copy(update={"sources": (*inputs.sources, added)})


RICHER_KINDS = [
    "declared",
    "income",
    "assets",
    "bank_account",
    "asset_record",
    "covered_income_record",
]


@st.composite
def richer(
    draw: st.DrawFn, inputs: AssessmentInput, parameters: PolicyParameters
) -> AssessmentInput:
    """The same household with more income or more assets, in one of several ways.

    Not included: a first income record for a member whose declaration counted so far. That
    replaces the declaration with the verified figure (the point of verification) and may
    lower the counted income; a large drop is sent to review by `declared_income_gap`.
    """
    scale = parameters.monthly_standard * len(inputs.members)
    extra = (scale * draw(STEPS)).quantize(CENT) + draw(FEN)
    kind = draw(st.sampled_from(RICHER_KINDS))
    owner = draw(st.sampled_from([m.id_number for m in inputs.members]))
    if kind == "declared":
        members = tuple(
            m.model_copy(update={"declared_monthly_income": m.declared_monthly_income + extra})
            if m.id_number == owner
            else m
            for m in inputs.members
        )
        return inputs.model_copy(update={"members": members})
    if kind in ("income", "assets"):
        return raise_amounts(inputs, INCOME_FIELDS if kind == "income" else ASSET_FIELDS, extra)
    if kind == "bank_account":
        account = BankAccountRecord(
            id_number=owner, bank="某银行", account="****9999", balance=extra
        )
        return add_record(inputs, "bank", account)
    if kind == "asset_record":
        source = draw(st.sampled_from(["securities", "vehicles", "real_estate"]))
        return add_record(inputs, source, record_for(draw, source, owner))
    # An extra income record for a member a source already covers (more verified income).
    covered = sorted(derive_facts(inputs, parameters).covered)
    if not covered:
        return raise_amounts(inputs, INCOME_FIELDS, extra)
    owner = inputs.members[draw(st.sampled_from(covered))].id_number
    source = draw(st.sampled_from(["tax", "public_payroll"]))
    return add_record(inputs, source, record_for(draw, source, owner))


@given(households(), st.data())
@settings(PROPERTY, max_examples=300)  # the property most worth the time: it finds the most
def test_more_income_or_assets_never_turn_ineligible_into_eligible(
    case: tuple[AssessmentInput, PolicyParameters], data: st.DataObject
) -> None:
    inputs, parameters = case
    before = assess(inputs, parameters)
    after = assess(data.draw(richer(inputs, parameters)), parameters)
    if before.recommendation == "ineligible":
        assert after.recommendation != "eligible"


@given(households(), st.randoms())
@PROPERTY
def test_assess_is_deterministic_and_ignores_source_order(
    case: tuple[AssessmentInput, PolicyParameters], shuffle: random.Random
) -> None:
    inputs, parameters = case
    first = assess(inputs, parameters).model_dump_json()
    assert assess(inputs, parameters).model_dump_json() == first
    sources = list(inputs.sources)
    shuffle.shuffle(sources)
    reordered = inputs.model_copy(update={"sources": tuple(sources)})
    assert assess(reordered, parameters).model_dump_json() == first


@given(households(), st.data())
@PROPERTY
def test_a_vehicle_of_unknown_value_is_never_eligible(
    case: tuple[AssessmentInput, PolicyParameters], data: st.DataObject
) -> None:
    """A non-exempt vehicle with no value, or 0, on record: review at best, never eligible."""
    inputs, parameters = case
    owner = data.draw(st.sampled_from([m.id_number for m in inputs.members]))
    kind = data.draw(st.sampled_from(["car", "truck", "other"]))
    value = data.draw(st.sampled_from([None, Decimal("0"), Decimal("0.00")]))
    vehicle = VehicleRecord(id_number=owner, plate="云A00000", type=kind, value=value)
    assessment = assess(add_record(inputs, "vehicles", vehicle), parameters)
    assert assessment.recommendation != "eligible"
    assert "vehicle_value_unknown" in [f.code for f in assessment.findings]


def without_text(assessment: Assessment) -> dict[str, Any]:
    dumped = assessment.model_dump(mode="json")
    for finding in dumped["findings"]:
        finding["message"] = ""
    for line in dumped["score_breakdown"]:
        line["reason"] = ""
    if dumped["benefit"]:
        dumped["benefit"]["basis"] = ""
    return dumped


@given(households())
@PROPERTY
def test_language_changes_wording_only(case: tuple[AssessmentInput, PolicyParameters]) -> None:
    inputs, parameters = case
    chinese = assess(inputs, parameters, language="zh")
    english = assess(inputs, parameters, language="en")
    assert without_text(chinese) == without_text(english)
    assert [f.message for f in chinese.findings] != [f.message for f in english.findings]


@given(households())
@PROPERTY
def test_score_and_outcome_invariants(case: tuple[AssessmentInput, PolicyParameters]) -> None:
    inputs, parameters = case
    assessment = assess(inputs, parameters)
    assert 0 <= assessment.score <= 100
    assert sum(line.points for line in assessment.score_breakdown) == assessment.score
    disqualified = any(f.severity == "disqualifying" for f in assessment.findings)
    assert (assessment.recommendation == "ineligible") >= disqualified
    if disqualified:
        assert assessment.score == 0
    if assessment.recommendation == "eligible":
        assert assessment.complete
        assert assessment.benefit is not None
    else:
        assert assessment.benefit is None
    text = assessment.model_dump_json()
    for household_member in inputs.members:
        assert household_member.id_number not in text


CARE_REGIONS: list[tuple[str, Area]] = [
    ("530103", "urban"),
    ("530103", "rural"),
    ("360102", "rural"),
]
TEKUN_WITH_CARE = [
    resolved.parameters
    for region, area in CARE_REGIONS
    if (resolved := CATALOG.resolve(region, "tekun", area, AS_OF)) is not None
]


@given(households(), st.sampled_from(TEKUN_WITH_CARE), st.sampled_from([1, 2]))
@PROPERTY
def test_a_care_grade_adds_its_subsidy_and_changes_nothing_else(
    case: tuple[AssessmentInput, PolicyParameters], parameters: PolicyParameters, grade: int
) -> None:
    """The care subsidy is paid on top: same findings, score and recommendation; but for
    the working-age check, which a grade of 1 or 2 (no ability to work) lifts, and only it."""
    inputs = case[0].model_copy(
        update={"program": "tekun", "area": parameters.area, "support_mode": "concentrated"}
    )
    without = assess(inputs, parameters)
    with_grade = assess(inputs.model_copy(update={"care_grade": grade}), parameters)
    lifted = [finding for finding in without.findings if finding.code != "tekun_working_age"]
    assert with_grade.findings == lifted
    if len(lifted) != len(without.findings):
        return
    assert with_grade.findings == without.findings
    assert with_grade.score_breakdown == without.score_breakdown
    assert with_grade.recommendation == without.recommendation
    if without.benefit is None:
        assert with_grade.benefit is None
        return
    assert with_grade.benefit is not None
    subsidy = (parameters.care_subsidies or {})["concentrated"][grade]
    assert with_grade.benefit.care_subsidy == subsidy
    assert with_grade.benefit.monthly_amount == without.benefit.monthly_amount + subsidy


@given(households())
@PROPERTY
def test_the_stored_body_and_hash_are_the_report_as_dumped(
    case: tuple[AssessmentInput, PolicyParameters],
) -> None:
    """`build_report` dumps the report once for its hash and its stored body: the same as
    dumping the report it returns, and the hash the report's own content gives."""
    inputs, parameters = case
    policy = ResolvedPolicy(parameters=parameters, content_hash="sha256:test")
    built = build_report("v-1", "530103", inputs, policy, generated_at=GENERATED)
    assert built.body == built.report.model_dump(mode="json")
    assert list(built.body) == list(built.report.model_dump(mode="json"))
    assert built.report.report_hash == report_hash(built.report)
    values = row_values(built, policy, inputs)
    assert values["body"] == built.report.model_dump(mode="json")
    assert values["report_hash"] == report_hash(built.report)


def standard_canonical(content: object) -> bytes:
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode()


@given(households())
@PROPERTY
def test_the_hash_is_taken_over_the_standard_librarys_canonical_form(
    case: tuple[AssessmentInput, PolicyParameters],
) -> None:
    """Stored reports were hashed over `json.dumps(sort_keys=True)`: the faster form must
    be byte for byte the same, or a rescore would call an unchanged report changed."""
    inputs, parameters = case
    policy = ResolvedPolicy(parameters=parameters, content_hash="sha256:test")
    report = build_report("v-1", "530103", inputs, policy, generated_at=GENERATED).report
    content = report.model_dump(mode="json", exclude={"generated_at", "report_hash"})
    assert canonical_json(content) == standard_canonical(content)
    assert report.report_hash == hashlib.sha256(standard_canonical(content)).hexdigest()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
@settings(max_examples=500, deadline=None)
def test_the_canonical_form_is_the_standard_librarys_for_any_json_value(value: object) -> None:
    """Beyond what reports hold today: text with any character, integers of any size."""
    try:
        expected = standard_canonical(value)
    except UnicodeEncodeError:  # a lone surrogate: neither form can hash it
        return
    assert canonical_json(value) == expected
