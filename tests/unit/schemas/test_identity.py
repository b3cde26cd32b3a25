"""GB 11643 ID numbers and the one place that masks personal data."""

import sys
import unicodedata
from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.identity import (
    _CHINESE_NUMERALS,
    _OTHER_DIGIT,
    FreeText,
    IdNumber,
    OneLine,
    _as_ascii_digit,
    check_character,
    contains_id_number,
    hides_id_number,
    id_number_problem,
    mask_id_number,
    mask_name,
    redact_id_numbers,
)


class Holder(BaseModel):
    id_number: IdNumber


regions = st.sampled_from(["110105", "530102", "360102", "440524", "990000"])
"""Region codes, one of them no province's (990000): a number is valid whatever its
county code says (codes are renamed and merged, old numbers keep theirs)."""
real_regions = st.sampled_from(["110105", "530102", "360102", "440524", "810000", "710000"])
"""Region codes under a province: free text is searched for numbers of these alone."""
births = st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31))


@st.composite
def id_numbers(draw: st.DrawFn, of: st.SearchStrategy[str] = regions) -> str:
    first17 = draw(of) + draw(births).strftime("%Y%m%d") + f"{draw(st.integers(0, 999)):03d}"
    return first17 + check_character(first17)


@pytest.mark.parametrize("valid", ["11010519491231002X", "440524188001010014"])
def test_documented_examples_are_valid(valid: str) -> None:
    assert id_number_problem(valid) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("11010519491231002", "must be 18 characters"),
        ("1101051949123100X2", "must be 17 ASCII digits (0-9) followed by a digit or X"),
        ("110105194913310028", "contains an invalid birth date"),
        ("110105194902300021", "contains an invalid birth date"),
        ("110105194912310021", "has a wrong check character"),
    ],
)
def test_invalid_numbers_say_why(value: str, problem: str) -> None:
    assert id_number_problem(value) == problem


def test_lower_case_x_is_accepted_as_upper_case() -> None:
    assert Holder(id_number="11010519491231002x").id_number == "11010519491231002X"


def test_error_message_does_not_echo_the_number() -> None:
    with pytest.raises(ValidationError) as raised:
        Holder(id_number="110105194912310021")
    assert "110105194912310021" not in str(raised.value.errors(include_input=False))


@given(id_numbers())
def test_generated_numbers_validate(value: str) -> None:
    assert id_number_problem(value) is None


@given(id_numbers(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_breaks_the_check(value: str, position: int, delta: int) -> None:
    changed = value[:position] + str((int(value[position]) + delta) % 10) + value[position + 1 :]
    # A change may also produce an invalid date; either way the number is refused.
    assert id_number_problem(changed) is not None


@given(id_numbers())
def test_masking_keeps_first_six_and_last_four_only(value: str) -> None:
    masked = mask_id_number(value)
    assert masked == value[:6] + "********" + value[-4:]
    assert redact_id_numbers(f"member {value} seen") == f"member {masked} seen"


def test_redaction_leaves_other_numbers_alone() -> None:
    text = "order 1234567890, phone 13800138000, amount 3000.00"
    assert redact_id_numbers(text) == text


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("王", "王*"),
        ("欧阳修文", "欧阳**"),  # a compound family name is kept whole
        ("诸葛亮", "诸葛*"),
        ("司马", "司*"),  # two characters: the given name is the second, masked
        ("欧文明", "欧**"),  # 欧 alone, not 欧阳
    ],
)
def test_names_keep_the_family_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@given(st.text(min_size=2, max_size=12))
def test_a_masked_name_hides_all_but_its_family_name(name: str) -> None:
    assume("*" not in name)
    masked = mask_name(name)
    assert len(masked) == len(name)
    kept = len(masked.rstrip("*"))
    assert kept in (1, 2)
    assert masked[:kept] == name[:kept]
    assert masked[kept:] == "*" * (len(name) - kept)


def test_birth_in_the_future_is_invalid() -> None:
    first17 = "11010520991231001"
    assert id_number_problem(first17 + check_character(first17)) == "contains an invalid birth date"


# Every decimal digit outside ASCII that Python's `\\d` and `int()` accept: full-width,
# Arabic-Indic, Devanagari, mathematical bold, ...
unicode_digits = st.characters(categories=["Nd"]).filter(lambda char: not char.isascii())
# Look-alikes of digits and of X that are no digits at all, and anything else non-ASCII.
CONFUSABLES = "OoIlZSBgqΟОΙΧХхⅩⅹＸｘ×¹²³⁰①⓪㊀〇一二"
confusables = st.sampled_from(CONFUSABLES) | st.characters(
    exclude_characters="0123456789Xx", exclude_categories=["Zs", "Cc"]
)


def _with_digit_in_script(value: str, position: int, script_digit: str) -> str:
    """`value` with the digit at `position` written as the same digit of another script."""
    zero = ord(script_digit) - int(script_digit)
    return value[:position] + chr(zero + int(value[position])) + value[position + 1 :]


@given(id_numbers(), st.lists(st.integers(0, 16), min_size=1, unique=True), unicode_digits)
def test_digits_of_any_other_script_are_refused(
    value: str, positions: list[int], script_digit: str
) -> None:
    """The same number with some digits written in another script is never valid."""
    changed = value
    for position in positions:
        changed = _with_digit_in_script(changed, position, script_digit)
    assert id_number_problem(changed) == "must be 17 ASCII digits (0-9) followed by a digit or X"
    with pytest.raises(ValidationError):
        Holder(id_number=changed)


@given(id_numbers(), unicode_digits)
def test_a_number_written_wholly_in_another_script_is_refused(
    value: str, script_digit: str
) -> None:
    changed = value
    for position in range(17 if value.endswith("X") else 18):
        changed = _with_digit_in_script(changed, position, script_digit)
    assert not changed.isascii()
    with pytest.raises(ValidationError):
        Holder(id_number=changed)


@given(id_numbers(), st.integers(0, 17), confusables)
def test_confusables_are_refused(value: str, position: int, char: str) -> None:
    changed = value[:position] + char + value[position + 1 :]
    assume(changed.strip() != value)
    with pytest.raises(ValidationError):
        Holder(id_number=changed)


@given(id_numbers())
def test_only_the_two_spellings_of_x_map_to_one_number(value: str) -> None:
    """Upper and lower x are one person; the validated value is always plain ASCII."""
    spelled = value[:-1] + value[-1].lower()
    assert Holder(id_number=spelled).id_number == value
    assert Holder(id_number=value).id_number.isascii()


@given(id_numbers(), st.sampled_from([" ", "\n", "\t", "\u3000", "\u00a0"]), st.booleans())
def test_white_space_around_a_number_is_refused_not_trimmed(
    value: str, space: str, before: bool
) -> None:
    """ASCII 0-9 and X only: what else a field carries says it was not copied as written."""
    with pytest.raises(ValidationError) as refused:
        Holder(id_number=space + value if before else value + space)
    [error] = refused.value.errors(include_input=False)
    assert "without spaces" in error["msg"]
    assert value not in str(error)


text_around = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)


@given(text_around, id_numbers(), text_around, st.one_of(st.none(), unicode_digits))
def test_no_id_number_survives_redaction_wherever_it_stands(
    before: str, value: str, after: str, script_digit: str | None
) -> None:
    """Next to letters (`A530102...`), inside longer digit runs, in any script of digits."""
    if script_digit is not None:
        for position in range(17):
            value = _with_digit_in_script(value, position, script_digit)
    redacted = redact_id_numbers(before + value + after)
    assert value not in redacted
    assert contains_id_number(before + value + after)


digit_runs = st.text(alphabet=st.sampled_from("0123456789Xx٥ -*"), max_size=80)


@given(st.lists(st.one_of(text_around, digit_runs, id_numbers()), max_size=5).map("".join))
def test_redacting_twice_changes_nothing_more(text: str) -> None:
    """Redacted text has nothing left to redact (the scorer relies on it: a record's
    description is redacted once, where it is written)."""
    once = redact_id_numbers(text)
    assert redact_id_numbers(once) == once


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("A530102199001011231", "A530102********1231"),
        ("ref-53010219900101123Xb", "ref-530102********123Xb"),
        ("5301021990010112311", "530102*********2311"),
    ],
)
def test_redaction_needs_no_word_boundary(text: str, redacted: str) -> None:
    assert redact_id_numbers(text) == redacted


VALID = "530102199001011231"


@pytest.mark.parametrize(
    "text",
    [
        f"see {VALID[:6]}\u200b{VALID[6:]}",  # a zero-width space inside
        f"see {VALID[:6]} {VALID[6:14]} {VALID[14:]}",  # written in groups
        f"{VALID[:6]}-{VALID[6:14]}-{VALID[14:]}",
        "A530102199_001011231",
        "".join(f"%{ord(c):02X}" for c in VALID),  # percent-encoded, as in a URL
        "53010219900101124Ｘ",  # a full-width check character
        "530102－19900101－124X",  # full-width hyphens
        "530102—19900101—124X",  # em dashes
        "530102    19900101    124X",  # wide gaps
        "５３０１０２１９９００１０１１２４X",  # full-width digits
        "530102·19900101·124X",  # middle dots
        "530102,19900101,124X",
        "530102，19900101，124X",  # full-width commas
        "(530102)1990010112 4X",
        "530102:19900101+124X*",
        "530102---------19900101124X",  # nine dashes
        "530102" + "\u00a0" * 9 + "19900101124X",  # nine no-break spaces
        "ID 530102 born 19900101 seq 124X",
        "身份证530102，生于19900101，尾号124X",
        "".join(f"%25{ord(c):02X}" for c in VALID),  # percent-encoded twice
        "".join(f"&#{ord(c)};" for c in VALID),  # HTML character references
        "五三〇一〇二一九九〇〇一〇一一二三一",  # Chinese numerals
        "伍叁零壹零贰壹玖玖零零壹零壹壹贰叁壹",  # their financial forms (大写)
        "身份证 伍參〇壹〇貳壹玖玖〇〇壹〇壹壹貳叁壹",  # traditional financial forms
        "〥〣〇〡〇〢〡〩〩〇〇〡〇〡〡〢〣〡",  # Suzhou numerals (not decimal digits to Unicode)
        "五三〇幺〇二 幺九九〇〇幺〇幺 幺二三幺",  # 幺, a 1 read out among digits
        "五三O一O二一九九OO一O一一二三一",  # an O for a zero among numerals (二O二六年)
        "伍参零壹零弐壹玖玖零零壹零壹壹贰参壹",  # 参 and 弐, as written day to day
        "❺❸⓿❶⓿❷❶❾❾⓿⓿❶⓿❶❶❷❸❶",  # dingbat digits, not decimal to Unicode
        "53010219900101123",  # seventeen digits: the check character follows from them
        "53010219900101123Х",  # a Cyrillic Х for the X: seventeen digits and a letter
        "530102x 19900101 1231",  # an x stuck to a piece
        "530102 19900101x 1231",
        "530102\ufdfa19900101\ufdfa1231",  # a ligature NFKC writes out in 18 letters
        "5叄0102199001011231",  # 叄, the traditional 叁
        "➄➂🄋➀🄋➁➀➈➈🄋🄋➀🄋➀➀➁➂➀",  # dingbat digits with their zero
        "530102 19900101 123",  # grouped as a number is, the check character left off
        "530102 19900101 124Х",  # the same, with a Cyrillic Х for its X
        "٥٣٠١٠٢ ١٩٩٠٠١٠١ ١٢٣١",  # Arabic-Indic digits, apart
        "५३०१०२-१९९००१०१-१२३१",  # Devanagari digits, apart
        # A check character X, and a digit not far after it: the X is no glue.
        "申请人 530102 19900101 124X 住1栋",
        "530102 19900101 124X 1",
        "A-530102-19900101-124X-1",
        "/h/530102-19900101-124X/1",
        "GET /v1/verifications/530102.19900101.124X HTTP/1.1",
        "5 3 0 1 0 2 1 9 9 0 0 1 0 1 1 2 4 X 7",
        "53010219-900101124X 2",
    ],
)
def test_an_id_number_written_apart_or_encoded_is_found(text: str) -> None:
    assert id_number_problem(VALID) is None
    assert hides_id_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "visited 2026-11-20, 2026-12-05 and 2026-12-06",
        "call 138 0013 8000 or 0871 6543 2109",
        "1.5 2.5 3.25 4.125 5.0625 6.03125",
        "case 2026-001234 of 2026-11-20",
        "income 640 yuan since 2026-03, rent 1200, 3 people, car worth 85000 (2019)",
        "批次 2026-H2，第 12 户，户主 1949 年生，月收入 300 元",
        "二〇二六年十一月二十日走访，第一户三人，月收入三百元",
        "人民币壹仟贰佰叁拾元整，2026-11-20 核对，3 口人",
        # A phone number's last digits, a date and an amount are no number's pieces.
        "申请人手机13562297631，2020年11月27日核实，存款302.46元。",
        "电话13932789488（2016.10.01登记），养老金9512.25元。",
        "12301.16元，1955-02-05，2014-04-13，案号7523号，16531483616，2001年2月16日",
        "订单号 12345678901234567",  # seventeen digits, no birth date in them
        "二O二六年十一月二十日走访，Ode to joy",
    ],
)
def test_dates_and_phone_numbers_side_by_side_are_not_taken_for_one(text: str) -> None:
    assert not hides_id_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "   ",
        "visit\u0007\u001b[31mred",  # a bell and an escape sequence
        "a\u0085b",  # a C1 control
        "abc\u202edcba",  # a right-to-left override
        "530102\u00ad19900101\u00ad124X",  # soft hyphens, invisible
        "张\u3164三丰",  # a Hangul filler: a letter to Unicode, shown as nothing
        "note\u2800",  # a blank braille cell
    ],
)
def test_free_text_refuses_blank_and_control_characters(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(FreeText).validate_python(text)
    with pytest.raises(ValidationError):
        TypeAdapter(OneLine).validate_python(text)


@pytest.mark.parametrize("text", ["张\n三", "a\tb", "case\r1", "a\u2028b", "a\u2029b"])
def test_one_line_refuses_line_breaks_and_tabs(text: str) -> None:
    with pytest.raises(ValidationError, match="must be one line"):
        TypeAdapter(OneLine).validate_python(text)


@pytest.mark.parametrize("text", ["张三", "阿卜杜·热合曼", "case-2026-000123", "Zhang San"])
def test_one_line_keeps_names_and_references(text: str) -> None:
    assert TypeAdapter(OneLine).validate_python(text) == text


@pytest.mark.parametrize("text", ["\ud800", "case-\udfff", "\udc00\ud800"])
def test_a_lone_surrogate_is_refused(text: str) -> None:
    """JSON may escape one ("\\ud800"), json.loads reads it, but it is no character: it
    cannot be written as UTF-8, and a database asked to store it fails."""
    for kind in (FreeText, OneLine):
        with pytest.raises(ValidationError, match="lone surrogate"):
            TypeAdapter(kind).validate_python(text)


def test_free_text_keeps_line_breaks_and_tabs() -> None:
    text = "visited on Monday\n\tthe car is the child's own"
    assert TypeAdapter(FreeText).validate_python(text) == text


def _is_glue(text: str) -> bool:
    """No digit (of any script, Chinese numerals included), no X, and at most 12 characters,
    as read (NFKC: `¹` is a 1, `㍱` three letters); no `%` or `&`, which would start an
    escape with the digits after them."""
    plain = unicodedata.normalize("NFKC", text)
    return len(plain) <= 12 and not any(c.isdigit() or c in NOT_GLUE for c in plain)


# Read as digits (an O among them as a zero too), a check character, escapes.
NOT_GLUE = "".join(_CHINESE_NUMERALS) + "Oo◯" + "Xx%&"


_GLUE_TEXT = st.text(min_size=1, max_size=12).filter(_is_glue)


@given(
    id_numbers(of=real_regions),
    st.lists(st.tuples(st.integers(1, 17), _GLUE_TEXT), max_size=4, unique_by=lambda c: c[0]),
)
def test_a_number_split_anywhere_by_anything_but_digits_is_found(
    value: str, cuts: list[tuple[int, str]]
) -> None:
    """However an ID number is cut apart (up to 12 characters that are not digits at each
    cut, a few cuts), free text holding it is refused."""
    text = value
    for at, glue in sorted(cuts, reverse=True):
        text = text[:at] + glue + text[at:]
    assert hides_id_number(f"note: {text} end")


def test_every_digit_of_every_script_and_every_chinese_numeral_reads_as_its_ascii_digit() -> None:
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    expected = "".join(
        _CHINESE_NUMERALS.get(character)
        or (
            str(digit) if (digit := unicodedata.decimal(character, None)) is not None else character
        )
        for character in everything
    )
    assert _OTHER_DIGIT.sub(_as_ascii_digit, everything) == expected
