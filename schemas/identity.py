"""Resident ID numbers (GB 11643) and the one place that masks personal data."""

import html
import re
import unicodedata
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import unquote

from pydantic import AfterValidator, BeforeValidator, Field

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
# ASCII only: `\d` and `int()` also accept full-width, Arabic-Indic and every other Unicode
# digit, and a number written in those matches nobody at any partner.
_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character over the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def birth_date(id_number: str) -> date:
    """The birth date an ID number holds (its characters 7 to 14); ValueError when
    they are no date."""
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def id_number_problem(value: str) -> str | None:
    """Why `value` is not a valid resident ID number, or None when it is.

    The region prefix is deliberately not checked against the current code list:
    codes are renamed and merged over the years, old IDs keep their birth-place prefix.
    """
    if len(value) != 18:
        return "must be 18 characters"
    if not _SHAPE.match(value):
        return "must be 17 ASCII digits (0-9) followed by a digit or X"
    try:
        birth = birth_date(value)
    except ValueError:
        return "contains an invalid birth date"
    # A day's grace: a newborn's number is issued on its local birth date, ahead of UTC.
    if birth.year < 1850 or birth > date.today() + timedelta(days=1):
        return "contains an invalid birth date"
    if check_character(value[:17]) != value[17]:
        return "has a wrong check character"
    return None


def _normalise(value: object) -> object:
    """Accept a lower-case check character as X; nothing else is rewritten (not even white
    space around it trimmed: ASCII 0-9 and X only), so that a number in other digits, or
    with something beside it, is refused rather than silently taken for another."""
    if not isinstance(value, str):
        return value
    return value[:-1] + "X" if value.endswith("x") else value


_SURROUNDED = "must be the 18 characters alone, without spaces or line breaks around them"


def _validate(value: str) -> str:
    problem = _SURROUNDED if value != value.strip() else id_number_problem(value)
    if problem:
        # The message never echoes the number itself: it would land in logs and responses.
        raise ValueError(f"ID number {problem}")
    return value


IdNumber = Annotated[
    str,
    BeforeValidator(_normalise),
    # The pattern documents the shape; the validator checks it, with a clearer message,
    # together with the birth date and the check character.
    Field(
        description="An 18-character resident ID number (GB 11643): the 6-digit region of "
        "birth, the birth date (YYYYMMDD), a 3-digit sequence and the check character, ISO "
        "7064 MOD 11-2 of the first 17 digits (0-9 or X). A wrong check character or an "
        "impossible birth date is 422; the sandbox's `GET /sandbox/id-numbers` hands out "
        "valid ones for tests",
        json_schema_extra={"examples": ["11010519491231002X"], "pattern": r"^[0-9]{17}[0-9Xx]$"},
    ),
    AfterValidator(_validate),
]
"""An 18-character GB 11643 resident ID number, upper-cased ("x" is accepted as "X")."""


def mask_id_number(value: str) -> str:
    """Keep the first 6 and last 4 characters: `530102********123X`."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


_COMPOUND_SURNAMES = (
    "欧阳 太史 端木 上官 司马 东方 独孤 南宫 万俟 闻人 夏侯 诸葛 尉迟 公羊 赫连 澹台 皇甫 "
    "宗政 濮阳 公冶 太叔 申屠 公孙 慕容 仲孙 钟离 长孙 宇文 司徒 鲜于 司空 闾丘 子车 亓官 "
    "司寇 巫马 公西 颛孙 壤驷 公良 漆雕 乐正 宰父 谷梁 拓跋 夹谷 轩辕 令狐 段干 百里 呼延 "
    "东郭 南门 羊舌 微生 梁丘 左丘 东门 西门 第五 南荣 东里"
)
COMPOUND_SURNAMES = frozenset(_COMPOUND_SURNAMES.split())
"""The two-character family names of the 百家姓 (and a few more in use): `欧阳**`, not `欧***`."""


def mask_name(value: str) -> str:
    """Keep the family name only: `张*`, `张**`, `欧阳**` (a compound one whole, when a
    given name follows it)."""
    if not value:
        return value
    kept = 2 if len(value) > 2 and value[:2] in COMPOUND_SURNAMES else 1
    return value[:kept] + "*" * max(len(value) - kept, 1)


def mask_account(value: str) -> str:
    """Bank account numbers keep their last 4 digits."""
    return "*" * max(len(value) - 4, 0) + value[-4:]


# Any run of 18 or more digits (the last may be X), wherever it stands: after a letter
# (`A530102...`), inside a longer number, or written in non-ASCII digits (`\d` is Unicode
# here on purpose).
_ID_IN_TEXT = re.compile(r"\d{17,}[\dXx]")


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    # First 6 and last 4 of the whole run: every 18-character window of it loses at least
    # 8 characters, so no ID number survives inside a longer run either.
    return run[:6] + "*" * (len(run) - 10) + run[-4:]


def contains_id_number(text: str) -> bool:
    """Whether `text` holds anything shaped like an ID number (see `redact_id_numbers`)."""
    return _ID_IN_TEXT.search(text) is not None


# Between two pieces of an ID number written apart: anything but a digit, up to 12
# characters of it (spaces of every kind, dashes, dots, commas, brackets, a word or two:
# `530102 born 19800101 seq 1231`; `_GLUE_MOST`). Only a valid number counts once joined
# (its province, birth date and check character), made of whole pieces (the first digit of
# one to the last of another), so numbers that merely stand near each other are not taken
# for one: a phone number's last digits, a date and an amount after it are no number.
# Not further apart: notes with dates, amounts and phone numbers among words joined into a
# valid number by chance in 0.7 % of them with glue up to 12 characters, 6.5 % up to 40
# and 7.4 % at any distance (20,000 generated notes of two to eight numbers among words,
# before pieces and provinces counted); a number taken apart by whole sentences is written
# to hide, which no check of text can stop.
_CHINESE_NUMERALS = {"〇": "0", "○": "0", "零": "0", "一": "1", "二": "2", "三": "3", "四": "4"}
_CHINESE_NUMERALS |= {"五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
# The financial forms (大写, as on cheques and forms, simplified and traditional), 幺 as a
# 1 is read out in a string of digits, and the Suzhou numerals (〡 to 〩), which are not
# decimal digits to Unicode.
_CHINESE_NUMERALS |= {"壹": "1", "贰": "2", "貳": "2", "叁": "3", "參": "3", "肆": "4"}
_CHINESE_NUMERALS |= {"伍": "5", "陆": "6", "陸": "6", "柒": "7", "捌": "8", "玖": "9"}
_CHINESE_NUMERALS |= {"幺": "1"} | {chr(0x3020 + n): str(n) for n in range(1, 10)}
_CHINESE_NUMERALS |= {"参": "3", "叄": "3", "弐": "2", "貮": "2"}  # 参 as 叁 is written day to day
# Digits NFKC leaves as they are and Unicode does not count as decimal: the dingbat and
# double-circled ones (❺ ➀ ➊ ⓵ ⓿ 🄋), the counting rods' units (𝍠 to 𝍨), and the digits of
# a few scripts that are numbers but not decimal digits to Unicode.
_CHINESE_NUMERALS |= {
    character: str(int(value))
    for first, last in (
        (0x1369, 0x1371),  # Ethiopic (1 to 9)
        (0x17F0, 0x17F9),  # Khmer's Lek Attak
        (0x24EA, 0x24FF),
        (0x2776, 0x2793),
        (0x1D2E0, 0x1D2E9),  # Mayan
        (0x1D360, 0x1D368),
        (0x1F10B, 0x1F10C),  # the dingbat zeros of ➀ to ➉
    )
    for character in map(chr, range(first, last + 1))
    if (value := unicodedata.numeric(character, -1)) in range(10)
    and unicodedata.normalize("NFKC", character) == character
}


# A digit of another script (`\d` is any Unicode decimal digit here) or a Chinese numeral.
# Most text has none: one regex pass finds them, with no Python call per character (a
# `str.translate` table resolving characters as they came raised a KeyError in Python for
# every character that is not a digit: 3.8 µs a text field, now 1.0).
NUMERALS = "".join(_CHINESE_NUMERALS)
"""Every character read as a digit that is not a decimal digit to Unicode."""
_OTHER_DIGIT = re.compile(f"(?![0-9])\\d|[{NUMERALS}]")
DIGIT_LIKE = re.compile(f"\\d|[{NUMERALS}]")
"""A digit of any script, or a Chinese numeral: what an ID number may be written in."""


def _as_ascii_digit(match: re.Match[str]) -> str:
    character = match.group()
    return _CHINESE_NUMERALS.get(character) or str(unicodedata.decimal(character))


_RUN = re.compile(r"[0-9]{17,}[0-9Xx]")
_SEVENTEEN = re.compile(r"(?<![0-9])[0-9]{17}(?![0-9])")
_ZERO_LETTERS = "Oo◯"
_AMONG_DIGITS = re.compile(f"[0-9{NUMERALS}{_ZERO_LETTERS}]+")
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 "  # noqa: SIM905 - 2 lines, not 36
    "44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83 91".split()
)
"""The first two digits an ID number may have (provinces, Hong Kong, Macao, Taiwan, and
residence permits): unchanged since 1997, unlike the county codes after them."""


_AS_ZEROS = str.maketrans(dict.fromkeys(_ZERO_LETTERS, "0"))


def _zeros_read(run: re.Match[str]) -> str:
    """An O among digits or numerals read as the zero it stands for (二O二六, 5301O2)."""
    text = run.group()
    if text.strip(_ZERO_LETTERS) == "":
        return text
    return text.translate(_AS_ZEROS)


def _seventeen_of_one(digits: str) -> bool:
    """Whether `digits` holds the first 17 characters of an ID number as a run of their
    own (the 18th, the check character, follows from them: one left off, or written as a
    letter that looks like X, hides nothing)."""
    return any(_opens_a_number(run) for run in _SEVENTEEN.findall(digits))


def _opens_a_number(first17: str) -> bool:
    """Whether 17 digits are how an ID number opens: a province's code, then (after the
    county's) a birth date since 1900."""
    if first17[:2] not in _PROVINCES:
        return False
    try:
        born = birth_date(first17)
    except ValueError:
        return False
    return born.year >= 1900 and born <= date.today()


def hides_id_number(text: str) -> bool:
    """Whether `text` holds an ID number, as is (`contains_id_number`) or written apart or
    percent-encoded (`5301 0219 9001 0112 31`, `%35%33...`). Written apart, only a valid
    number of whole pieces counts (its province, birth date and check character), so that
    dates and phone numbers side by side are not taken for one."""
    # Full-width digits, letters and dashes read as their plain forms (`Ｘ`, `－`); an ID
    # number as is stays one (decoding and NFKC leave a run of digits alone).
    plain = unicodedata.normalize("NFKC", _LIGATURES.sub(" ", _decoded(text)))
    if contains_id_number(plain):
        return True
    # Digits of every script (`٥٣٠`, `५३०`) and Chinese numerals (`五三〇`) as ASCII, so
    # that a number written in them and apart is joined like one written in 0-9.
    # An O among them is read both ways: as the zero it may stand for (二O二六), and as the
    # letter that may stand between two pieces (530102O19900101...).
    zeros = _AMONG_DIGITS.sub(_zeros_read, plain) if _has_zero_letter(plain) else plain
    for readable in (plain, zeros) if zeros != plain else (plain,):
        if hides_in_pieces(_OTHER_DIGIT.sub(_as_ascii_digit, readable)):
            return True
    return False


_LIGATURES = re.compile("[\ufb50-\ufdff\ufe70-\ufeff]")
"""Arabic presentation forms, which NFKC writes out in up to 18 letters (ﷺ): one character
between two pieces of a number is one character of text between them, not eighteen."""


def _has_zero_letter(text: str) -> bool:
    return any(letter in text for letter in _ZERO_LETTERS)


def hides_in_pieces(digits: str) -> bool:
    """`hides_id_number` of text whose digits are all ASCII digits already (no encoding,
    no other script, no numeral): cheaper, for text that is known to be such (an
    identifier of hex digits and dashes, say)."""
    if _seventeen_of_one(digits):
        return True
    pieces = [(piece.start(), piece.end(), piece.group()) for piece in _PIECE.finditer(digits)]
    left = sum(len(piece) for _, _, piece in pieces)
    for first, (_, first_end, first_piece) in enumerate(pieces):
        if left < _ID_LENGTH - 1:  # too few digits from here on for any number
            return False
        left -= len(first_piece)
        if len(first_piece) >= _ID_LENGTH:  # a run of its own (of numerals): anywhere in it
            if holds_valid_id_number(first_piece):
                return True
            continue
        # A number begins with a province's code: most pieces do not (a cheap test first).
        opening = first_piece[:2] if len(first_piece) > 1 else _opening(pieces, first)
        if opening in _PROVINCES and _joined_from(digits, pieces, first, first_end, first_piece):
            return True
    return False


def _opening(pieces: list[tuple[int, int, str]], first: int) -> str:
    """The first two digits of a number beginning with a one-digit piece."""
    following = pieces[first + 1][2][:1] if first + 1 < len(pieces) else ""
    return pieces[first][2] + following


def _joined_from(
    digits: str, pieces: list[tuple[int, int, str]], first: int, end: int, number: str
) -> bool:
    """Whether the pieces from `first` on, joined while no more than `_GLUE_MOST`
    characters stand between two, make a valid number of whole pieces."""
    grouped = [len(number)]
    for start, stop, more in [*pieces[first + 1 :], (-1, -1, "")]:
        if len(number) == _ID_LENGTH - 1 and _seventeen_complete(digits, end, number, grouped):
            return True
        if len(number) >= _ID_LENGTH:
            return len(number) == _ID_LENGTH and _valid_under_a_province(number)
        if not more or not 0 < start - end <= _GLUE_MOST:
            return False
        number += more
        grouped.append(len(more))
        end = stop
    return False  # pragma: no cover - the sentinel piece above ends the loop


def _seventeen_complete(digits: str, end: int, number: str, grouped: list[int]) -> bool:
    """17 digits of whole pieces: a number with its check character X after them (right
    after, or after a few characters), or grouped as a number is (place, birth date,
    sequence) with the check character left off or written as a look-alike of X: it
    follows from the 17."""
    if _CHECK_X.match(digits, end) is not None and _valid_under_a_province(number + "X"):
        return True
    return grouped == [6, 8, 3] and _opens_a_number(number)


_ID_LENGTH = 18
_GLUE_MOST = 12
_PIECE = re.compile(r"[0-9]+")
"""A piece of a number written apart: digits (an x between two is text between them)."""
_CHECK_X = re.compile(r"[^0-9]{0,12}?[Xx](?![0-9A-Za-z])")
"""A check character X after the 17th digit of a number: right after it, or after text
between (a letter X of a word, `Xu`, is no check character)."""


def _valid_under_a_province(number: str) -> bool:
    return number[:2] in _PROVINCES and id_number_problem(number[:17] + number[17].upper()) is None


def holds_valid_id_number(joined: str) -> bool:
    """Whether a run of `joined` holds a valid ID number: only what a glue hid counts once
    it is checked to be a real number (its province, birth date and check character)."""
    return any(
        _valid_under_a_province(run[start : start + _ID_LENGTH])
        for run in _RUN.findall(joined)
        for start in range(len(run) - _ID_LENGTH + 1)
    )


def _decoded(text: str) -> str:
    """`text` with percent-encoding (once, twice, thrice: `%2535`) and HTML character
    references (`&#53;`) read, as a browser or a second decoder would."""
    for _ in range(3):
        decoded = html.unescape(unquote(text))
        if decoded == text:
            break
        text = decoded
    return text


_LINE_BREAKS = frozenset("\t\n\r")
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters (to Unicode) that show nothing: the Hangul fillers and the blank braille cell."""


def _no_id_number(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    # An ID number first: written apart with invisible characters, it is what to say.
    if hides_id_number(text):
        raise ValueError("must not contain an ID number or any run of 18 digits")
    for character in text:
        category = unicodedata.category(character)
        # A lone surrogate (JSON's "\ud800" escape) is no character at all: it cannot be
        # written as UTF-8, so neither database stores it.
        if category == "Cs":
            raise ValueError(f"must not contain a lone surrogate (U+{ord(character):04X})")
        # Control and format characters (escape sequences, direction overrides, invisible
        # hyphens) change how the text reads where it is shown; line breaks and tabs stay.
        if category in ("Cc", "Cf") and character not in _LINE_BREAKS:
            raise ValueError(f"must not contain control characters (U+{ord(character):04X})")
        if character in _BLANK_LETTERS:
            raise ValueError(f"must not contain invisible characters (U+{ord(character):04X})")
    return text


def _one_line(text: str) -> str:
    if any(
        character in _LINE_BREAKS or unicodedata.category(character) in ("Zl", "Zp")
        for character in text
    ):
        raise ValueError("must be one line, without tabs or line breaks")
    return _no_id_number(text)


FreeText = Annotated[str, AfterValidator(_no_id_number)]
"""Text a person writes that is stored, shown and sent as is (a reason, a note): refused
when it is blank, holds control or format characters (line breaks and tabs aside) or a
lone surrogate, or holds an ID number, which belongs in a sealed column, never in free
text."""

OneLine = Annotated[str, AfterValidator(_one_line)]
"""A name, a reference, a title: `FreeText` on one line (no tabs or line breaks either)."""


def redact_id_numbers(text: str) -> str:
    """Mask every ID-number-shaped run inside free text (log lines, partner error bodies)."""
    return _ID_IN_TEXT.sub(_mask_run, text)
