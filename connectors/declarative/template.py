"""Named placeholders in a declarative request: the whole of its "template language".

A string may contain `{name}` placeholders and nothing else in braces; a JSON body may hold
`{"$each_member": <template>}`, which becomes a list with one rendered copy per member asked
about. No expressions, filters or code: a spec cannot make hedui run anything.
"""

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

EACH_MEMBER = "$each_member"

HOUSEHOLD_NAMES = frozenset({"region_code", "as_of", "as_of_year"})
"""Placeholders usable anywhere in a request: they name no person."""
MEMBER_NAMES = frozenset({"id_number", "name"})
"""Placeholders for one member: only in a body, never in a URL, header or query."""

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class TemplateProblem(ValueError):
    """A template that uses an unknown placeholder or stray braces; `pointer` says where."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer


def placeholders(text: str, pointer: str) -> list[str]:
    """The placeholder names in `text`; `TemplateProblem` for braces that are not one."""
    leftover = _PLACEHOLDER.sub("", text)
    if "{" in leftover or "}" in leftover:
        raise TemplateProblem(pointer, "braces must enclose a placeholder name such as {as_of}")
    return _PLACEHOLDER.findall(text)


def check_names(text: str, pointer: str, allowed: frozenset[str]) -> None:
    for name in placeholders(text, pointer):
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none here"
            raise TemplateProblem(pointer, f"unknown placeholder {{{name}}} (allowed: {known})")


def check_json_template(
    value: object, pointer: str, *, member_level: bool, in_member: bool = False
) -> None:
    """Check a JSON body template: placeholders known, `$each_member` only where allowed."""
    if isinstance(value, str):
        allowed = HOUSEHOLD_NAMES | (MEMBER_NAMES if member_level or in_member else frozenset())
        check_names(value, pointer, allowed)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_template(
                item, f"{pointer}/{index}", member_level=member_level, in_member=in_member
            )
    elif isinstance(value, dict):
        if EACH_MEMBER in value:
            if len(value) != 1:
                raise TemplateProblem(pointer, f"{EACH_MEMBER} must be the object's only key")
            if in_member:
                raise TemplateProblem(pointer, f"{EACH_MEMBER} cannot be nested")
            check_json_template(
                value[EACH_MEMBER],
                f"{pointer}/{_escape_pointer(EACH_MEMBER)}",
                member_level=member_level,
                in_member=True,
            )
            return
        for key, item in value.items():
            check_json_template(
                item,
                f"{pointer}/{_escape_pointer(key)}",
                member_level=member_level,
                in_member=in_member,
            )


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def fill(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def render_json(
    value: object, values: Mapping[str, str], members: Sequence[Mapping[str, str]]
) -> Any:
    """The body for `members`; outside `$each_member` member names are the first member's."""
    if isinstance(value, str):
        return fill(value, values)
    if isinstance(value, list):
        return [render_json(item, values, members) for item in value]
    if isinstance(value, dict):
        if EACH_MEMBER in value:
            return [
                render_json(value[EACH_MEMBER], {**values, **member}, members) for member in members
            ]
        return {key: render_json(item, values, members) for key, item in value.items()}
    return value


Renderer = Callable[[Mapping[str, str], Sequence[Mapping[str, str]]], Any]


def compile_text(text: str) -> Callable[[Mapping[str, str]], str]:
    """`fill` for one string, split at its placeholders once: rendering only joins."""
    parts = _PLACEHOLDER.split(text)  # literal, name, literal, name, ..., literal
    if len(parts) == 1:
        return lambda values: text
    if len(parts) == 3 and parts[0] == parts[2] == "":
        name = parts[1]
        return lambda values: values[name]
    literals, names = parts[0::2], parts[1::2]

    def render(values: Mapping[str, str]) -> str:
        out = [literals[0]]
        for name, literal in zip(names, literals[1:], strict=True):
            out += (values[name], literal)
        return "".join(out)

    return render


def compile_json(value: object) -> Renderer:
    """`render_json` for one template, its structure walked once: the same result, faster."""
    if isinstance(value, str):
        text = compile_text(value)
        return lambda values, members: text(values)
    if isinstance(value, list):
        items = [compile_json(item) for item in value]
        return lambda values, members: [item(values, members) for item in items]
    if isinstance(value, dict):
        if EACH_MEMBER in value:
            each = compile_json(value[EACH_MEMBER])
            return lambda values, members: [
                each({**values, **member}, members) for member in members
            ]
        entries = [(key, compile_json(item)) for key, item in value.items()]
        return lambda values, members: {key: item(values, members) for key, item in entries}
    return lambda values, members: value


_QUOTES = {'"': "&quot;", "'": "&apos;"}


def xml_escape(value: str) -> str:
    """`value` safe in XML text and in a quoted attribute: a name such as `x" admin="1`
    must not add an attribute to the partner's request."""
    return escape(value, _QUOTES)


def render_xml(text: str, values: Mapping[str, str]) -> str:
    return fill(text, {name: xml_escape(value) for name, value in values.items()})


def render_xml_members(
    text: str, values: Mapping[str, str], members: Sequence[Mapping[str, str]]
) -> Iterator[str]:
    for member in members:
        yield render_xml(text, {**values, **member})
