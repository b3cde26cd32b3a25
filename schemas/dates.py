"""Dates on the wire: ISO 8601 strings only."""

from datetime import date
from typing import Annotated

from pydantic import BeforeValidator


def _iso_only(value: object) -> object:
    # pydantic would read a number as seconds since 1970: a caller who sends 0 means a
    # mistake, not 1970-01-01.
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date (YYYY-MM-DD)")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_only)]
