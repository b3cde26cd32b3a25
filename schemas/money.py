"""Money on the wire: accepted as a number or decimal string, returned as "640.00"."""

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

CENT = Decimal("0.01")


def to_cents(value: Decimal | int) -> Decimal:
    """Round half-up to whole fen, the way benefit amounts are paid out."""
    return (value if type(value) is Decimal else Decimal(value)).quantize(CENT, ROUND_HALF_UP)


def format_money(value: Decimal | int) -> str:
    """ "640.00": a quantized amount's exponent is -2, which `str` writes as fixed-point
    (three times faster than `f"{amount:.2f}"`, and called for every amount a report or
    a partner record holds)."""
    return str(to_cents(value))


_DECIMAL_STRING = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _written_plainly(pattern: re.Pattern[str]) -> Callable[[object], object]:
    """A validator taking a string amount only as `pattern` writes it: ASCII digits with a
    decimal point at most (`412.50`), as an office or a partner writes it; no exponent
    (`1e3`), sign, spaces, underscores (`1_000`) or other scripts' digits (`１０００`), all
    of which Python's Decimal would read. Never a boolean."""

    def check(value: object) -> object:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError("an amount in yuan, digits with at most two decimals: 412.50")
        if isinstance(value, bool):
            raise ValueError("an amount in yuan, not a boolean")
        return value

    return check


Money = Annotated[
    Decimal,
    BeforeValidator(_written_plainly(_DECIMAL_STRING)),
    Field(ge=0, max_digits=16, decimal_places=2),
    PlainSerializer(format_money, return_type=str, when_used="json"),
]
"""A non-negative yuan amount with at most two decimal places."""

SignedMoney = Annotated[
    Decimal,
    Field(max_digits=16),
    PlainSerializer(format_money, return_type=str, when_used="json"),
]
"""A yuan amount that may be negative (deltas in simulations)."""


GRANT_MAX = Decimal("1000000")
_PLAIN_AMOUNT = re.compile(r"[0-9]{1,7}(?:\.[0-9]{1,2})?")


GrantedMoney = Annotated[
    Decimal,
    BeforeValidator(_written_plainly(_PLAIN_AMOUNT)),
    Field(gt=0, le=GRANT_MAX, decimal_places=2),
    PlainSerializer(format_money, return_type=str, when_used="json"),
]
"""A monthly amount an approver grants: more than nothing, at most a million yuan, written
plainly (a string of digits, or a JSON number)."""
