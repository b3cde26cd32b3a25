"""Household values put into an XML request body stay values: in text and in attributes."""

import pytest
from defusedxml.ElementTree import fromstring
from hypothesis import given
from hypothesis import strategies as st

from connectors.declarative.template import render_xml, render_xml_members

# What XML 1.0 can carry at all (a name with a control character is the partner's problem).
xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=64,
)


@given(name=xml_text)
def test_a_name_cannot_add_attributes_or_elements(name: str) -> None:
    rendered = render_xml(
        '<Person name="{name}" alias=\'{name}\' id="{id_number}">{name}</Person>',
        {"name": name, "id_number": "530102199001011231"},
    )

    person = fromstring(rendered)
    assert person.attrib == {"name": name, "alias": name, "id": "530102199001011231"}
    assert (person.text or "") == name
    assert list(person) == []


def test_an_attribute_injection_stays_in_its_attribute() -> None:
    name = 'x" role="admin\' other=\'1 </Person><Person id="1'
    members = render_xml_members(
        '<P n="{name}"/>', {"region_code": "530102"}, [{"name": name, "id_number": "A"}]
    )

    query = fromstring(f"<Q>{''.join(members)}</Q>")
    assert [p.attrib for p in query] == [{"n": name}]


def test_an_answer_nested_past_any_format_is_malformed_not_a_crash() -> None:
    from connectors.base import MalformedResponse
    from connectors.declarative.connector import XML_MAX_DEPTH, xml_data
    from connectors.wire import parse_xml

    depth = 50_000
    nested = b"<r>" + b"<a>" * depth + b"</a>" * depth + b"</r>"
    with pytest.raises(MalformedResponse, match="nested deeper"):
        xml_data(parse_xml(nested))
    fine = b"<r>" + b"<a>" * XML_MAX_DEPTH + b"</a>" * XML_MAX_DEPTH + b"</r>"
    assert "a" in xml_data(parse_xml(fine))
