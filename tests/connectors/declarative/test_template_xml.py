"""Household values put into an XML request body stay values: in text and in attributes."""

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
