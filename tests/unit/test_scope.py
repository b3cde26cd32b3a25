"""The scoping helper, as properties: a filter never widens a caller's scope, and the SQL
`scoped()` writes selects exactly the households the four-level rule admits."""

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from service.auth.scope import narrow, place, scoped

# Few digits, so that prefixes often meet: one province, two prefectures, counties and
# townships of each.
digit = st.sampled_from("12")
county = st.builds(lambda tail: "53" + tail, st.text(digit, min_size=4, max_size=4))
household = st.tuples(county, st.one_of(st.none(), st.text(digit, min_size=3, max_size=3))).map(
    lambda pair: (pair[0], None if pair[1] is None else pair[0] + pair[1])
)
scope = st.one_of(
    st.just(""),
    st.just("53"),
    county.map(lambda code: code[:4]),
    county,
    household.filter(lambda h: h[1] is not None).map(lambda h: str(h[1])),
)

ROWS = Table(
    "rows",
    MetaData(),
    Column("id", String, primary_key=True),
    Column("region", String),
    Column("township", String),
)


def admits(prefix: str, region: str, township: str | None) -> bool:
    """The rule of docs/permissions.md, written plainly."""
    if len(prefix) <= 6:
        return region.startswith(prefix)
    return township is not None and township.startswith(prefix)


@settings(max_examples=60, deadline=None)
@given(prefix=scope, households=st.lists(household, max_size=12))
def test_scoped_selects_what_the_rule_admits(
    prefix: str, households: list[tuple[str, str | None]]
) -> None:
    engine = create_engine("sqlite://")
    ROWS.metadata.create_all(engine)
    with engine.begin() as connection:
        if households:
            connection.execute(
                insert(ROWS),
                [{"id": str(i), "region": r, "township": t} for i, (r, t) in enumerate(households)],
            )
        statement = scoped(select(ROWS.c.id), prefix, ROWS.c.region, ROWS.c.township)
        found = set(connection.scalars(statement))
    expected = {str(i) for i, (r, t) in enumerate(households) if admits(prefix, r, t)}
    assert found == expected
    # The same rule as a caller's coverage of one household (creating one, webhook events).
    assert expected == {
        str(i)
        for i, (r, t) in enumerate(households)
        if place(r, t).startswith(prefix) and (len(prefix) <= 6 or t is not None)
    }


@given(own=scope, requested=st.one_of(st.none(), scope))
def test_a_filter_never_widens_the_callers_scope(own: str, requested: str | None) -> None:
    narrowed = narrow(own, requested)
    assert narrowed.startswith(own)
    if requested and requested.startswith(own):
        assert narrowed == requested
