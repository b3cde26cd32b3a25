"""Region scoping, in one place: which rows a caller may see.

Four levels, after the GB/T 2260 codes and the statistical division codes below them:
province (2 digits), prefecture (4), county (6) and township (乡镇/街道, 9 digits whose
first 6 are the county's). A key's scope is a prefix of one of these, or '' for every
region. A household row carries its county's `region_code` and, optionally, the
`township_code` of its township.

- A province, prefecture or county scope sees every row whose `region_code` starts with
  it: every township of a county, and the county's rows without a township.
- A township scope sees only rows of that township. A table without a township column
  (near-relative registrations are kept per county) shows a township scope nothing.

Every query that returns household data goes through `scoped`; an object outside the
caller's scope is then simply not found (a 404, never a 403: no existence oracle).
"""

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_
from sqlalchemy.orm import InstrumentedAttribute

from service.auth.principal import Principal, covers, narrow

__all__ = [
    "Statement",
    "condition",
    "county_in_scope",
    "covers",
    "narrow",
    "place",
    "prefix_of",
    "scoped",
]

COUNTY_DIGITS = 6
TOWNSHIP_DIGITS = 9

# Any SELECT, of one entity or several columns.
Statement = TypeVar("Statement", bound=Select[*tuple[Any, ...]])
Column = InstrumentedAttribute[Any] | ColumnElement[Any]


def prefix_of(scope: Principal | str) -> str:
    """The region prefix of a principal, or `scope` itself when already a prefix."""
    return scope.region_prefix if isinstance(scope, Principal) else scope


def place(region_code: str, township_code: str | None) -> str:
    """The most precise code of a household: its township's, else its county's. A scope
    covers a household when this starts with the scope's prefix."""
    return township_code or region_code


def county_in_scope(scope: Principal | str, region_code: str) -> bool:
    """Whether a household of this county may lie inside `scope`: for a township scope,
    whether it is the township's county (the township code itself is checked apart)."""
    return region_code.startswith(prefix_of(scope)[:COUNTY_DIGITS])


def condition(
    scope: Principal | str, region_col: Column, township_col: Column | None = None
) -> ColumnElement[bool] | None:
    """The WHERE clause of `scoped`; None when the scope is every region."""
    prefix = prefix_of(scope)
    if not prefix:
        return None
    if len(prefix) <= COUNTY_DIGITS or township_col is None:
        # Also the columns that hold a creator's scope (batches, webhooks): a township
        # key's own prefix is 9 digits and matches there by prefix too.
        return region_col.startswith(prefix, autoescape=True)
    return and_(
        # The county part keeps the query on the region index.
        region_col == prefix[:COUNTY_DIGITS],
        township_col.startswith(prefix, autoescape=True),
    )


def scoped(
    statement: Statement,
    scope: Principal | str,
    region_col: Column,
    township_col: Column | None = None,
) -> Statement:
    """`statement` kept to the rows inside `scope` (a principal, or a prefix already
    narrowed by a filter), by the row's region column and township column."""
    where = condition(scope, region_col, township_col)
    return statement if where is None else statement.where(where)
