"""Money on the wire: accepted as a number or decimal string, returned as "640.00"."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer

CENT = Decimal("0.01")


def to_cents(value: Decimal | int) -> Decimal:
    """Round half-up to whole fen, the way benefit amounts are paid out."""
    return (value if type(value) is Decimal else Decimal(value)).quantize(CENT, ROUND_HALF_UP)


def format_money(value: Decimal | int) -> str:
    """ "640.00": a quantized amount's exponent is -2, which `str` writes as fixed-point
    (three times faster than `f"{amount:.2f}"`, and called for every amount a report or
    a partner record holds)."""
    return str(to_cents(value))


Money = Annotated[
    Decimal,
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
