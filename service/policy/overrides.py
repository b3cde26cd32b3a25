"""What-if variants of resolved policy figures, for simulations.

A simulated policy must never be mistaken for a real one: its version gains the suffix
"+sim" and its content hash is recomputed, so a report built on it names what it used.
"""

from collections.abc import Mapping
from datetime import date

from pydantic import ValidationError

from schemas.policy import PolicyParameters, ResolvedPolicy
from service.policy.files import NOT_FIGURES, VersionEntry
from service.policy.hashing import content_hash

SIM_SUFFIX = "+sim"


FIGURES = tuple(sorted(set(PolicyParameters.model_fields) - set(NOT_FIGURES)))
"""The names a simulation may override."""

LONE_SURROGATE = "holds a lone surrogate (U+D800 to U+DFFF), which is not text"


class PolicyOverrideError(ValueError):
    """An override that names an unknown or fixed field, or gives an invalid value.

    `field` is None when the overrides cannot be told apart by name (a name that is not
    text)."""

    def __init__(self, field: str | None, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field or 'overrides'}: {problem}")

    @property
    def loc(self) -> list[str | int]:
        """Where the error is in a request: `overrides`, then the override, if known."""
        return ["overrides"] if self.field is None else ["overrides", self.field]


def check_overrides(overrides: Mapping[str, object]) -> None:
    """What can be told of overrides before any policy they apply to: each names a figure,
    and gives a value unless the figure may be absent, with text alone in names and values.
    (Values are checked against each policy they are applied to.)"""
    for field in overrides:
        if not _is_text(field):
            # Not a figure's name, and not to be echoed: no UTF-8 answer can carry it.
            raise PolicyOverrideError(None, f"a figure's name {LONE_SURROGATE}")
        if _holds_non_text(overrides[field]):
            # A type of vehicle, an arrangement: text that could be neither hashed nor shown.
            raise PolicyOverrideError(field, LONE_SURROGATE)
        if field in NOT_FIGURES:
            raise PolicyOverrideError(field, "is not a figure and cannot be overridden")
        if field not in PolicyParameters.model_fields:
            raise PolicyOverrideError(
                field, f"is not a policy parameter; the figures are {', '.join(FIGURES)}"
            )
        if overrides[field] is None and PolicyParameters.model_fields[field].default is not None:
            # null takes a figure away where it may be absent (a cap); the others always
            # have a value.
            raise PolicyOverrideError(field, "must be a value, not null")


def _is_text(value: str) -> bool:
    """Whether `value` encodes as UTF-8: JSON's escapes (and Python) allow a lone
    surrogate such as `\\ud800`, which no UTF-8 body or content hash can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _holds_non_text(value: object) -> bool:
    """Whether any string in `value` (keys of mappings included, at any depth) is not text;
    walked without recursion, however deep the body nests."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not _is_text(item):
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _refused(error: ValidationError) -> PolicyOverrideError:
    """The first thing wrong, at its dotted place; our own validators' messages without the
    prefix pydantic puts before them."""
    first = error.errors()[0]
    field = ".".join(map(str, first["loc"]))
    return PolicyOverrideError(field, first["msg"].removeprefix("Value error, "))


def check_override_values(program: str, area: str, overrides: Mapping[str, object]) -> None:
    """`check_overrides`, and each value as a parameter file of `program` and `area` would
    have to give it (a zero or negative standard, months beyond the bound): what can be
    refused before, and whether or not, any stored case is scored with them."""
    _checked_entry(program, area, _ANY_DAY, overrides)


def _checked_entry(
    program: str, area: str, effective_from: date, overrides: Mapping[str, object]
) -> VersionEntry:
    """`overrides` checked by name (`check_overrides`), then as the figures of a parameter
    file's entry of `program` and `area` (a zero standard is refused, for one)."""
    check_overrides(overrides)
    try:
        return VersionEntry.model_validate(
            {"program": program, "area": area, "effective_from": effective_from, **overrides}
        )
    except ValidationError as error:
        raise _refused(error) from error


_ANY_DAY = date(2000, 1, 1)
"""A date for `check_override_values`'s entry: the checks of a value do not depend on it."""


def apply_overrides(resolved: ResolvedPolicy, overrides: Mapping[str, object]) -> ResolvedPolicy:
    """`resolved` with some figures replaced, e.g. {"monthly_standard": "700"}.

    Only figures can change; region, program, area and effective date stay those of the
    policy simulated. Values are validated like a parameter file's. Overriding the standard
    clears `standard_is_placeholder`: the simulation names its own figure.
    """
    base = resolved.parameters
    checked = _checked_entry(base.program, base.area, base.effective_from, overrides)
    figures = {field: getattr(checked, field) for field in overrides}
    version = base.version if base.version.endswith(SIM_SUFFIX) else base.version + SIM_SUFFIX
    if "monthly_standard" in figures:
        # A standard chosen for the simulation is nobody's placeholder.
        figures["standard_is_placeholder"] = False
    try:
        parameters = PolicyParameters.model_validate(
            {**base.model_dump(), **figures, "version": version}
        )
    except ValidationError as error:
        raise _refused(error) from error
    return ResolvedPolicy(
        parameters=parameters,
        content_hash=content_hash(parameters),
        source_files=resolved.source_files,
    )
