"""A spec's jmespath expressions: refused when they multiply what they read, and bounded
when they run, so no answer makes hedui build billions of values before anything stops it."""

import json
import time
import tracemalloc
from decimal import Decimal
from typing import Any

import pytest
import respx

from connectors.base import MalformedResponse, fetch_evidence
from connectors.declarative import SpecInvalid, build_connector, validate_spec
from connectors.declarative.expression import (
    MAX_FAN_OUT,
    STEPS_BASE,
    AnswerInterpreter,
    Expression,
    OverBudget,
    check_expression,
)
from connectors.http import PartnerClient
from schemas.evidence import Evidence
from tests.connectors.declarative.specs import example
from tests.connectors.support import A, household


def _copies(width: int, stages: int, start: str = "results") -> str:
    """`results[].[@,@,…][]…`: each stage makes `width` copies of every element."""
    return start + ("[]." + "[" + ",".join(["@"] * width) + "]" + "[]") * stages


BLOW_UP = _copies(20, 7)
"""20**7 copies of each item; nested 29 deep, within the depth limit."""
ELEVEN = "[" + ",".join(["@"] * 11) + "]"


def _problems(spec: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecInvalid) as caught:
        validate_spec(spec)
    return {problem.pointer: problem.message for problem in caught.value.problems}


def _tax(**response: str) -> dict[str, Any]:
    spec = example("tax")
    spec["response"].update(response)
    return spec


class TestRegistration:
    def test_an_expression_that_multiplies_what_it_reads_is_named(self) -> None:
        problems = _problems(_tax(records=BLOW_UP))

        assert list(problems) == ["/response/records"]
        assert f"more than {MAX_FAN_OUT} values" in problems["/response/records"]

    @pytest.mark.parametrize(
        "expression",
        [
            f"{ELEVEN} | {ELEVEN} | {ELEVEN}[][][]",
            f"to_string({ELEVEN} | {ELEVEN} | {ELEVEN})",
            f"results[?({ELEVEN} | {ELEVEN} | {ELEVEN}) == `1`]",
            f"results[].join(join(',', {ELEVEN}), [{','.join(['sfzh'] * 100)}])",
        ],
        ids=["pipes", "to_string of copies", "comparing copies", "join repeating its glue"],
    )
    def test_copies_made_through_pipes_comparisons_and_functions_are_refused(
        self, expression: str
    ) -> None:
        with pytest.raises(ValueError, match=f"more than {MAX_FAN_OUT} values"):
            check_expression(expression)

    @pytest.mark.parametrize(
        "expression",
        [
            "results[?found]",
            _copies(20, 2),
            "results[].{year: taxYear, amount: taxableIncome, who: sfzh, ok: found}",
            "results[?found && retCode == '000000'].{y: taxYear, items: items[].[a, b, c]}",
            "sort_by(results, &taxYear)[].join('-', [sfzh, to_string(taxYear)])",
        ],
    )
    def test_what_reading_records_needs_is_accepted(self, expression: str) -> None:
        validate_spec(_tax(records=expression))

    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("results[].evaluate(@)", "unknown jmespath function evaluate()"),
            ("abs(results, results)", "jmespath function abs() given 2 arguments"),
            ("not_null()", "jmespath function not_null() given 0 arguments"),
        ],
    )
    def test_a_function_call_jmespath_would_refuse_when_run_is_named(
        self, expression: str, message: str
    ) -> None:
        assert _problems(_tax(records=expression)) == {"/response/records": message}

    def test_a_function_taking_any_number_of_arguments_takes_several(self) -> None:
        validate_spec(_tax(records="not_null(results, answers, items)"))


class TestEvaluation:
    """Expressions a stored spec may hold from before the registration check, or that pass
    it and meet an answer large enough to make them costly: stopped by the answer's budget."""

    @staticmethod
    def _bounded(expression: str, data: object, size: int = 100) -> tuple[float, float]:
        """CPU seconds taken (of this thread: a busy machine does not count) and megabytes
        allocated at most until the budget stopped it."""
        tracemalloc.start()
        started = time.thread_time()
        try:
            with pytest.raises(OverBudget):
                Expression(expression).search(data, AnswerInterpreter(size))
            return time.thread_time() - started, tracemalloc.get_traced_memory()[1] / 1e6
        finally:
            tracemalloc.stop()

    def test_copies_of_copies_stop_within_the_budget(self) -> None:
        seconds, megabytes = self._bounded(BLOW_UP, {"results": [{"sfzh": A}]})

        assert seconds < 2
        assert megabytes < 20

    @pytest.mark.parametrize(
        "tail",
        ["to_string(@)", "@ == [@]", "contains(@, `1`)", "[@] | [].join(to_string(@), ['a', 'b'])"],
    )
    def test_shared_copies_are_counted_in_full_by_deep_operations(self, tail: str) -> None:
        """`[@,@] | [@,@] | …` shares its parts (cheap to build); serialising or comparing
        it walks every copy: counted as walked, stopped before the walk is done."""
        copies = " | ".join(["[" + ",".join(["@"] * 20) + "]"] * 7)
        seconds, megabytes = self._bounded(f"{copies} | {tail}", {"a": "x" * 50})

        assert seconds < 2
        assert megabytes < 20

    def test_a_glue_repeated_by_join_counts_before_it_is_joined(self) -> None:
        data = {"glue": "g" * 1_000_000, "parts": ["p"] * 10_000}

        with pytest.raises(OverBudget):
            Expression("join(glue, parts)").search(data, AnswerInterpreter(2_000_000))

    def test_the_budget_grows_with_the_answer(self) -> None:
        items = list(range(STEPS_BASE))
        expression = "[].[@, @][]"

        with pytest.raises(OverBudget):
            Expression(expression).search(items, AnswerInterpreter(0))
        result = Expression(expression).search(items, AnswerInterpreter(len(json.dumps(items))))
        assert len(result) == 2 * STEPS_BASE


async def _fetch(spec: dict[str, Any], answer: object) -> Evidence:
    connector = build_connector(validate_spec(spec), "1")
    config = connector.default_config()
    with respx.mock(base_url=config.base_url) as router:
        router.post("/income/batch").respond(200, json=answer)
        async with PartnerClient() as client:
            return await fetch_evidence(connector, household(A), config, client)


def _hits(count: int) -> dict[str, object]:
    hit = {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 100}
    return {"retCode": "000000", "results": [hit] * count}


class TestFetch:
    async def test_a_stored_blow_up_meets_a_partner_answer_as_a_malformed_answer(self) -> None:
        """A spec stored before expressions were checked for copies: its first answer is
        malformed, quickly and within bounded memory, not a process filled to its limit."""
        spec = example("tax")
        connector = build_connector(validate_spec(spec), "1")
        response = connector.spec.response.model_copy(update={"records": BLOW_UP})
        stored = build_connector(connector.spec.model_copy(update={"response": response}), "1")
        config = stored.default_config()

        tracemalloc.start()
        started = time.perf_counter()
        try:
            with respx.mock(base_url=config.base_url) as router:
                router.post("/income/batch").respond(200, json=_hits(1))
                async with PartnerClient() as client:
                    with pytest.raises(MalformedResponse, match=r"response\.records: evaluating"):
                        await fetch_evidence(stored, household(A), config, client)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
        finally:
            tracemalloc.stop()

        assert time.perf_counter() - started < 3
        assert peak < 50

    async def test_copies_the_check_lets_through_are_bounded_by_the_answer(self) -> None:
        """400 copies of each item pass registration; on an answer of thousands of items
        they pass the answer's budget, and the answer is malformed."""
        spec = _tax(records=f"{_copies(20, 2)} | [?found]")

        with pytest.raises(MalformedResponse, match=r"more than [0-9]+ steps"):
            await _fetch(spec, _hits(2_000))

    async def test_an_expression_jmespath_cannot_apply_to_the_answer_is_malformed(
        self,
    ) -> None:
        """`abs()` of an ID number: jmespath's type error names the value it was given, so
        the answer is malformed and the message names only the field."""
        spec = _tax()
        spec["response"]["fields"]["year"] = {"expr": "abs(sfzh)"}

        with pytest.raises(MalformedResponse) as caught:
            await _fetch(spec, _hits(1))

        assert str(caught.value) == (
            "response.fields.year cannot be evaluated on this answer (JMESPathTypeError)"
        )
        assert A not in str(caught.value)

    async def test_an_answer_read_within_its_budget_gives_its_records(self) -> None:
        spec = _tax(
            records="results[?found].{sfzh: sfzh, taxYear: taxYear, taxableIncome: taxableIncome}"
        )

        evidence = await _fetch(spec, _hits(1))

        assert [(record.id_number, record.year) for record in evidence.records] == [(A, 2025)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("sum(items[].amount)", Decimal("1000.75")),
        ("max(items[].amount)", Decimal("900.50")),
        ("abs(items[0].amount)", Decimal("100.25")),
        ("avg(items[].amount)", Decimal("500.375")),
        ("max_by(items, &amount).name", "b"),
        ("sort_by(items, &amount)[0].name", "a"),
        ("items[?amount > `500`].name", ["b"]),
    ],
)
def test_a_partners_amounts_are_numbers_to_jmespaths_functions(
    expression: str, expected: object
) -> None:
    """Answers are parsed with their numbers as Decimal: the numeric functions take them."""
    data = json.loads(
        '{"items": [{"name": "a", "amount": 100.25}, {"name": "b", "amount": 900.50}]}',
        parse_float=Decimal,
    )
    assert Expression(expression).search(data, AnswerInterpreter(100)) == expected


@pytest.mark.parametrize(
    "expression",
    ["ceil(to_number('1e999'))", "floor(to_number('nan'))", "ceil(to_number(amount))"],
)
async def test_a_function_given_infinity_or_nan_makes_the_answer_malformed(
    expression: str,
) -> None:
    """`ceil` of infinity raised OverflowError, of NaN ValueError: a 500 on a test read."""
    spec = example("tax")
    spec["response"]["fields"]["year"] = {"expr": expression}
    connector = build_connector(validate_spec(spec), "1")
    config = connector.default_config()
    answer = {
        "retCode": "000000",
        "results": [{"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 100}],
    }
    answer["results"][0]["amount"] = "1e999"
    with respx.mock(base_url=config.base_url) as router:
        router.post("/income/batch").respond(200, json=answer)
        async with PartnerClient() as client:
            with pytest.raises(MalformedResponse, match="cannot be evaluated"):
                await fetch_evidence(connector, household(A), config, client)
