"""Money formatting: "640.00" for every amount, as the wire and the sealed records hold it."""

import json
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError

from schemas.money import (
    _DECIMAL_STRING,
    CENT,
    GRANT_MAX,
    GrantedMoney,
    Money,
    _written_plainly,
    format_money,
    to_cents,
)
from schemas.policy import FIGURE_MAX, Figure

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


# Money as it was first written: the limits applied by pydantic's Python validators after the
# Decimal is made. Money applies them as pydantic reads the Decimal, with the sign checked
# first, as these did; every amount must be taken or refused alike, with the same error.
AS_FIRST_WRITTEN = TypeAdapter(
    Annotated[
        Decimal,
        BeforeValidator(_written_plainly(_DECIMAL_STRING)),
        Field(ge=0, max_digits=16, decimal_places=2),
    ]
)
AS_FIRST_WRITTEN_FIGURE = TypeAdapter(
    Annotated[
        Decimal,
        BeforeValidator(_written_plainly(_DECIMAL_STRING)),
        Field(ge=0, max_digits=16, decimal_places=2),
        Field(le=FIGURE_MAX),
    ]
)
FIGURE = TypeAdapter(Figure)

TRICKY: list[object] = [
    "412.500", "412.50", "0.000", "0", "00012.30", "1e3", "1E+3", "-0", "-0.00", "-1",
    "1234567890123456", "12345678901234567", "12345678901234.56", "123456789012345.6",
    "99999999999999.999", "1.0000000000000000000001", " 1", "1 ", "1_000", "\uff11\uff10",
    "", ".5", "5.", "NaN", "inf", "1000000", "1000000.01",
    1.5, 0.1, 1e3, -0.0, -1.5, 1e20, 1.005, 1e-9, -1e-9, math.nan, math.inf, -math.inf,
    True, False, None, 0, -1, 10**16, 10**15, -(10**17), 1000000,
    Decimal("1E+3"), Decimal("-0"), Decimal("-0.000"), Decimal("1.230"), Decimal("1.235"),
    Decimal("NaN"), Decimal("-NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"),
    Decimal("-1.234"), Decimal("-12345678901234567.123"), Decimal("12345678901234567.1"),
    Decimal("1E+20"), Decimal("1E-20"), Decimal("-1E-20"), Decimal("1000000.000"),
    [], {}, b"1.5", "１２",
]  # fmt: skip
JSON_NUMBERS = ["1e3", "1E3", "-0", "-0.0", "412.500", "1.234", "-1.234", "1.0e-2", "1" * 30]


def outcome(adapter: TypeAdapter[Decimal], value: object, *, json: bool = False) -> object:
    """What validation makes of `value`: the amount, or each error as a caller sees it."""
    try:
        if json:
            assert isinstance(value, str)
            result = adapter.validate_json(value)
        else:
            result = adapter.validate_python(value)
    except ValidationError as error:
        return [(e["type"], e["loc"], e["msg"], repr(e.get("ctx"))) for e in error.errors()]
    return repr(result)


def same_as_first_written(value: object) -> None:
    assert outcome(MONEY, value) == outcome(AS_FIRST_WRITTEN, value)
    assert outcome(FIGURE, value) == outcome(AS_FIRST_WRITTEN_FIGURE, value)
    try:
        written = json.dumps(value)
    except (TypeError, ValueError):
        return
    for adapter, first in ((MONEY, AS_FIRST_WRITTEN), (FIGURE, AS_FIRST_WRITTEN_FIGURE)):
        assert outcome(adapter, written, json=True) == outcome(first, written, json=True)


@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_an_amount_is_taken_or_refused_as_it_always_was(value: object) -> None:
    same_as_first_written(value)


@pytest.mark.parametrize("written", JSON_NUMBERS)
def test_a_json_number_is_taken_or_refused_as_it_always_was(written: str) -> None:
    assert outcome(MONEY, written, json=True) == outcome(AS_FIRST_WRITTEN, written, json=True)


AMOUNT_TEXT = st.text(alphabet="0123456789.-+eE _", max_size=22)


@given(
    st.decimals()
    | st.decimals(min_value=-(10**18), max_value=10**18)
    | st.integers(-(10**18), 10**18)
    | st.floats()
    | AMOUNT_TEXT
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | st.booleans()
)
def test_any_amount_is_taken_or_refused_as_it_always_was(value: object) -> None:
    same_as_first_written(value)


def test_the_api_document_gives_money_as_it_always_did() -> None:
    assert MONEY.json_schema() == {
        "anyOf": [{"type": "number"}, {"type": "string"}],
        "ge": 0,
        "max_digits": 16,
        "decimal_places": 2,
    }
    assert MONEY.json_schema(mode="serialization") == {"type": "string", "decimal_places": 2}
    assert FIGURE.json_schema() == AS_FIRST_WRITTEN_FIGURE.json_schema()


@pytest.mark.parametrize("granted", ["1000000000000.00", "1000000.01", 1e12, "9999999999999999"])
def test_a_grant_too_large_is_refused_for_its_size_not_its_writing(granted: object) -> None:
    """An approver who typed a few zeros too many is told the most that can be granted."""
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(GrantedMoney).validate_python(granted)
    [error] = refused.value.errors()
    assert error["type"] == "less_than_equal"
    assert error["ctx"]["le"] == GRANT_MAX
    assert error["msg"] == "Input should be less than or equal to 1000000"


@pytest.mark.parametrize("granted", ["412.555", "1e3", "+5", "１０００"])
def test_a_grant_written_otherwise_is_refused_for_its_writing(granted: str) -> None:
    with pytest.raises(ValidationError, match="digits with at most two decimals"):
        TypeAdapter(GrantedMoney).validate_python(granted)
