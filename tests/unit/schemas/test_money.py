"""Money formatting: "640.00" for every amount, as the wire and the sealed records hold it."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.money import CENT, Money, format_money, to_cents

MONEY = TypeAdapter(Money)

AMOUNTS = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**14), max_value=10**14)


@given(AMOUNTS | st.integers(-(10**14), 10**14))
def test_format_money_is_the_amount_in_fen_with_two_places(amount: Decimal | int) -> None:
    expected = f"{Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP):.2f}"
    assert format_money(amount) == expected
    assert Decimal(format_money(amount)) == to_cents(amount)
    whole, _, fen = format_money(amount).partition(".")
    assert len(fen) == 2
    assert "E" not in whole.upper()


def test_half_a_fen_rounds_away_from_zero() -> None:
    assert format_money(Decimal("0.005")) == "0.01"
    assert format_money(Decimal("-0.005")) == "-0.01"
    assert format_money(Decimal("1E+3")) == "1000.00"
    assert format_money(0) == "0.00"


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=0, max_value=10**13, places=2))
def test_an_amount_written_plainly_is_read_as_written(amount: Decimal) -> None:
    assert MONEY.validate_python(format_money(amount)) == to_cents(amount)
    assert MONEY.validate_json(f'"{format_money(amount)}"') == to_cents(amount)


@pytest.mark.parametrize(
    "written",
    ["1e3", "1E+3", "1_000", "\uff11\uff10\uff10", " 12", "12 ", "+12", ".5", "5.", "", "NaN"],
)
def test_an_amount_string_python_reads_but_no_office_writes_is_refused(written: str) -> None:
    with pytest.raises(ValidationError, match="digits with at most two decimals"):
        MONEY.validate_python(written)


def test_a_boolean_is_not_an_amount() -> None:
    with pytest.raises(ValidationError, match="not a boolean"):
        MONEY.validate_python(True)
