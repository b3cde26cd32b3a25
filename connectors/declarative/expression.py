"""The jmespath expressions of a declarative spec: checked when registered, bounded when run.

A spec's expressions run on every partner answer, and jmespath can make much of little:
`[@, @, @]` copies its input three times, a projection applies that to every element, and
seven such stages make 3**7 copies of each item of an answer a few bytes long. Two guards:

- `check_expression` (registration): the expression compiles, nests at most
  `MAX_EXPRESSION_DEPTH` deep, names only jmespath's own functions, and cannot make more
  than `MAX_FAN_OUT` values of each value it reads (multi-selects within projections and
  pipes multiply, see `fan_out`).
- `AnswerInterpreter` (every answer): the expressions evaluated on one partner answer share
  a budget of steps scaled to the answer's size (`STEPS_BASE` + `STEPS_PER_BYTE` per byte):
  each node visited, each element a step allocates, and the full size of what a deep
  operation (`==`, `to_string`, `contains`, `join`) walks cost steps; past the budget, the
  evaluation stops (`OverBudget`) before it has allocated more than about that many values.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from jmespath.visitor import Options, TreeInterpreter

MAX_EXPRESSION_DEPTH = 32
"""How deeply a jmespath expression may nest: a partner's answer needs a handful of levels;
hundreds would exhaust the interpreter's stack (jmespath parses and evaluates recursively)."""

MAX_FAN_OUT = 1000
"""How many values an expression may make of each value it reads (`fan_out`): a spec that
reshapes a record into a few dozen fields needs tens."""

STEPS_BASE = 100_000
STEPS_PER_BYTE = 4
"""The budget of steps of one answer's expressions: far beyond what reading the records of
an answer takes (a few steps per record field), far short of a blow-up's billions."""

FUNCTIONS = frozenset(functions.Functions.FUNCTION_TABLE)
"""jmespath's built-in functions, the only ones a spec may call."""


def check_expression(value: str) -> str:
    """`value`, a jmespath expression a spec may hold; ValueError says why not."""
    if _bracket_depth(value) > MAX_EXPRESSION_DEPTH:
        raise ValueError(f"a jmespath expression nested more than {MAX_EXPRESSION_DEPTH} deep")
    try:
        parsed = jmespath.compile(value).parsed
    except JMESPathError as error:
        raise ValueError(f"not a valid jmespath expression ({type(error).__name__})") from None
    except RecursionError:
        parsed = None
    if parsed is None or _depth(parsed) > MAX_EXPRESSION_DEPTH:
        raise ValueError(f"a jmespath expression nested more than {MAX_EXPRESSION_DEPTH} deep")
    call_problem = _call_problem(parsed)
    if call_problem is not None:
        raise ValueError(call_problem)
    if fan_out(parsed) > MAX_FAN_OUT:
        raise ValueError(
            f"a jmespath expression that makes more than {MAX_FAN_OUT} values of each value "
            "it reads (multi-selects multiplied through projections or pipes)"
        )
    return value


def is_path(value: str) -> bool:
    """Is `value` a plain path to a value (`data.rows`), with no projection, filter,
    function or operator that could drop, add or reorder the items it selects?"""

    def plain(node: dict[str, Any]) -> bool:
        if node["type"] == "field":
            return True
        return node["type"] == "subexpression" and all(map(plain, node["children"]))

    return plain(jmespath.compile(value).parsed)


def _bracket_depth(text: str) -> int:
    """How deeply brackets nest in `text` (quotes not told apart: a literal with dozens of
    open brackets is no expression a partner's answer needs)."""
    deepest = level = 0
    for character in text:
        if character in "([{":
            level += 1
            deepest = max(deepest, level)
        elif character in ")]}":
            level -= 1
    return deepest


def _nodes(tree: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
    """Every node of a parsed expression with its level (walked without recursion)."""
    found, pending = [], [(tree, 1)]
    while pending:
        node, level = pending.pop()
        found.append((node, level))
        pending.extend(
            (child, level + 1) for child in node.get("children", ()) if isinstance(child, dict)
        )
    return found


def _depth(tree: dict[str, Any]) -> int:
    """The deepest level of a parsed expression."""
    return max(level for _, level in _nodes(tree))


def _call_problem(tree: dict[str, Any]) -> str | None:
    """What is wrong with a function call of the expression (jmespath finds out only when
    it evaluates the call): a function it does not have, or the wrong number of arguments."""
    for node, _ in _nodes(tree):
        if node["type"] != "function_expression":
            continue
        name, given = node["value"], len(node["children"])
        if name not in FUNCTIONS:
            return f"unknown jmespath function {name}()"
        signature = functions.Functions.FUNCTION_TABLE[name]["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if given < len(signature) or (given > len(signature) and not variadic):
            return f"jmespath function {name}() given {given} arguments"
    return None


_CHAINED = frozenset({"subexpression", "pipe", "index_expression", "function_expression"})
_PROJECTIONS = frozenset({"projection", "value_projection", "filter_projection"})
_ALTERNATIVES = frozenset({"or_expression", "and_expression"})
_PASSED_ON = frozenset({"flatten", "key_val_pair", "expref"})


def fan_out(tree: dict[str, Any]) -> int:
    """The most values any step of the expression may make of one value it reads.

    A multi-select makes as many as its items together; a projection applies its right
    side to each element its left side makes, a pipe or a subexpression its second part to
    what the first made, a function its arguments to one another (`join` repeats its glue,
    `map` its expression): they multiply. Comparisons and negations make one value, but
    what their operands make counts too (comparing copies walks every one).
    Called on an expression already known to nest at most `MAX_EXPRESSION_DEPTH` deep."""
    return _fan_out(tree)[1]


def _fan_out(node: dict[str, Any]) -> tuple[int, int]:
    """(values the node makes of one value, the most any step within it makes)."""
    children = [child for child in node.get("children", ()) if isinstance(child, dict)]
    made = [_fan_out(child) for child in children]
    sizes = [size for size, _ in made]
    kind = node["type"]
    if kind in _CHAINED or kind in _PROJECTIONS:
        size = 1
        for part in sizes:
            size *= part
    elif kind in ("multi_select_list", "multi_select_dict"):
        size = max(sum(sizes), 1)
    elif kind in _ALTERNATIVES:
        size = max(sizes, default=1)
    elif kind in _PASSED_ON:
        size = sizes[0] if sizes else 1
    else:  # a field, an index, a literal, `@`, a comparison, a negation
        size = 1
    return size, max([size, *(most for _, most in made)])


class OverBudget(Exception):
    """The answer's budget of steps is spent."""


_ALLOCATING = frozenset(
    {
        "flatten",
        "multi_select_list",
        "multi_select_dict",
        "slice",
        "projection",
        "filter_projection",
        "value_projection",
        "function_expression",
    }
)
"""Nodes whose result is a new list, object or string: each element costs a step."""
_DEEP_FUNCTIONS = frozenset({"to_string", "contains", "join"})
"""Functions whose work grows with the full size of their arguments, not their length."""


class _DecimalFunctions(functions.Functions):
    """jmespath's functions, taking a partner's amounts as numbers: answers are parsed with
    their numbers as Decimal (never a binary float near money), which jmespath's own type
    check, by type name, knows only as `float` and `int` (`sum(items[].amount)` failed)."""

    def _get_allowed_pytypes(self, types: Any) -> tuple[list[str], list[list[str]]]:
        allowed, subtypes = super()._get_allowed_pytypes(types)
        return _with_decimal(allowed), [_with_decimal(names) for names in subtypes]

    def _convert_to_jmespath_type(self, pyobject: str) -> str:
        return (
            "number" if pyobject == "Decimal" else str(super()._convert_to_jmespath_type(pyobject))
        )


def _with_decimal(names: Any) -> list[str]:
    return [*names, "Decimal"] if "float" in names else list(names)


_SHARED_FUNCTIONS = _DecimalFunctions()


class AnswerInterpreter(TreeInterpreter):
    """Evaluates a spec's expressions on one partner answer, within the answer's budget.

    One per answer, used by one thread at a time; every expression evaluated on the answer
    (records, fields of each record, error rules, pagination) spends from the same budget."""

    def __init__(self, answer_bytes: int) -> None:
        super().__init__(Options(custom_functions=_SHARED_FUNCTIONS))
        self.budget = STEPS_BASE + STEPS_PER_BYTE * max(answer_bytes, 0)
        self.left = self.budget

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise OverBudget

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self.spend(1)
        result = super().visit(node, *args, **kwargs)
        if node["type"] in _ALLOCATING and isinstance(result, list | dict | str):
            self.spend(len(result))
        return result

    def visit_comparator(self, node: dict[str, Any], value: Any) -> Any:
        if node["value"] not in self._EQUALITY_OPS:
            return super().visit_comparator(node, value)  # numbers and strings only
        left = self.visit(node["children"][0], value)
        right = self.visit(node["children"][1], value)
        # Comparing lists or objects compares every element, shared ones as often as they
        # are reached: `[@, @] == [@, @]` after a few pipes is billions of comparisons.
        self.weigh(left)
        self.weigh(right)
        return self.COMPARATOR_FUNC[node["value"]](left, right)

    def visit_function_expression(self, node: dict[str, Any], value: Any) -> Any:
        name = node["value"]
        arguments = [self.visit(child, value) for child in node["children"]]
        for argument in arguments:
            if isinstance(argument, list | dict | str):
                self.spend(len(argument))
            if name in _DEEP_FUNCTIONS:
                self.weigh(argument)
        if name == "join" and len(arguments) == 2:
            glue, parts = arguments
            if isinstance(glue, str) and isinstance(parts, list):
                self.spend(len(glue) * len(parts))
        return self._functions.call_function(name, arguments)

    def weigh(self, value: object) -> None:
        """Spend the full size of `value`: every element and character, a part reached
        twice counted twice. Stops as soon as the budget is spent."""
        pending = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                self.spend(1 + len(item))
            elif isinstance(item, list):
                self.spend(1 + len(item))
                pending.extend(item)
            elif isinstance(item, dict):
                self.spend(1 + 2 * len(item))
                pending.extend(item)
                pending.extend(item.values())
            else:
                self.spend(1)


class Expression:
    """A jmespath expression compiled once, evaluated within an answer's budget: a plain
    field path (`result.records`) is read without the interpreter, with the same result.

    `search` raises `OverBudget` when the answer's budget is spent, and jmespath's own
    errors (a function given the wrong type of value) as `JMESPathError`."""

    __slots__ = ("search",)

    def __init__(self, expression: str) -> None:
        parsed = jmespath.compile(expression).parsed
        path = _field_path(parsed)
        if path is None:
            self.search: Callable[[object, AnswerInterpreter], Any] = lambda value, interpreter: (
                interpreter.visit(parsed, value)
            )
        elif len(path) == 1:
            (name,) = path
            self.search = lambda value, _: value.get(name) if isinstance(value, dict) else None
        else:
            self.search = partial(_follow, path)


def _field_path(node: dict[str, Any]) -> tuple[str, ...] | None:
    """The field names of `a`, `a.b.c`; None for any other expression."""
    if node["type"] == "field":
        return (node["value"],)
    if node["type"] == "subexpression":
        names: list[str] = []
        for child in node["children"]:
            part = _field_path(child)
            if part is None:
                return None
            names += part
        return tuple(names)
    return None


def _follow(path: tuple[str, ...], value: object, _: AnswerInterpreter) -> Any:
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value
