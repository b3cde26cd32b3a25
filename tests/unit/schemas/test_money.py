"""Money formatting: "640.00" for every amount, as the wire and the sealed records hold it."""

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas.money import CENT, format_money, to_cents

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
