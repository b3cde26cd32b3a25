"""Templates compiled once render exactly what the plain renderer does."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from connectors.declarative.template import (
    EACH_MEMBER,
    compile_json,
    compile_text,
    fill,
    render_json,
)

NAMES = ("region_code", "as_of", "id_number", "name")
VALUES = {"region_code": "530102", "as_of": "2026-11-20", "id_number": "A", "name": "张三"}
MEMBERS = [{"id_number": "A1", "name": "甲"}, {"id_number": "B2", "name": "乙"}]

texts = st.lists(
    st.one_of(st.sampled_from([f"{{{name}}}" for name in NAMES]), st.text("ab-_ 中/", max_size=5)),
    max_size=6,
).map("".join)
templates: st.SearchStrategy[Any] = st.recursive(
    st.one_of(texts, st.integers(), st.booleans(), st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3),
        children.map(lambda child: {EACH_MEMBER: child}),
    ),
    max_leaves=12,
)


@given(texts)
def test_compiled_text_fills_like_fill(text: str) -> None:
    assert compile_text(text)(VALUES) == fill(text, VALUES)


@given(templates)
def test_compiled_json_renders_like_render_json(template: Any) -> None:
    assert compile_json(template)(VALUES, MEMBERS) == render_json(template, VALUES, MEMBERS)
