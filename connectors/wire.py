"""Reading partner bodies: every format failure becomes `MalformedResponse`.

Each partner's wire format is described by small pydantic models (`WireModel`); a body
that is not JSON or XML, or misses or mistypes a field, is malformed. Messages name
field locations and error kinds only, never the offending values: they may be IDs,
names or balances.
"""

import json
import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, NoReturn, TypeVar, get_args, get_origin
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree
from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from connectors.base import MalformedResponse
from schemas.identity import hides_id_number, redact_id_numbers
from schemas.json_members import RepeatedMember, unique_members

M = TypeVar("M", bound=BaseModel)

_SHOWN_PROBLEMS = 3
LONG_LIST = 256
"""Lists of models at least this long are validated item by item (see `validate`)."""
XML_FEED_BYTES = 64 * 1024
# Short codes such as "E500", "9999", "internal_server_error" are safe to quote; free text
# is not, nor any long run of digits (ID, account or phone numbers).
_ERROR_CODE = re.compile(r"^(?!.*\d{7})[A-Za-z0-9_.-]{1,32}$")


class WireModel(BaseModel):
    """A partner's body as documented; unknown extra fields are tolerated, not kept."""

    model_config = ConfigDict(extra="ignore", frozen=True)


PartnerIdNumber = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True)]
"""An ID number as a partner writes it back; "x" and "X" are the same check character."""


AMOUNT_STRING = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
"""An amount written as a string: ASCII digits, at most one point, nothing else."""


def _plain_amount(value: object) -> object:
    """An amount as a partner's format writes one: a JSON number (an exact `Decimal` from
    `load_json`, or an int) or a string of `AMOUNT_STRING`. `Decimal()` would also read
    full-width digits, spaces, `_` and exponents ("３００", " 300", "1e2"): a partner that
    writes those is not keeping its format, and an amount misread is a wrong fact."""
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_parsing", "not an amount")
    if isinstance(value, str):
        if not AMOUNT_STRING.fullmatch(value):
            raise PydanticCustomError("decimal_parsing", "not a plain decimal amount")
    elif isinstance(value, Decimal) and value.is_finite():
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent > 0:  # 1E+2: written with an exponent
            raise PydanticCustomError("decimal_parsing", "not a plain decimal amount")
    return value


WireAmount = Annotated[Decimal, BeforeValidator(_plain_amount)]
"""A decimal field of a partner's answer (money, an area): see `_plain_amount`."""


def safe_code(value: object) -> str:
    """`value` if it looks like a short partner code, else "?": never quote free text."""
    text = str(value)
    # A code may hold dashes and dots, so an ID number written apart fits its shape.
    return text if _ERROR_CODE.match(text) and not hides_id_number(text) else "?"


def describe(error: ValidationError, *, within: tuple[str | int, ...] = ()) -> str:
    problems = [
        f"{'.'.join(str(part) for part in (*within, *loc)) or 'body'} ({problem['type']})"
        for problem in error.errors(include_url=False, include_input=False, include_context=False)
        for loc in [problem["loc"]]
    ]
    text = "; ".join(problems[:_SHOWN_PROBLEMS])
    if len(problems) > _SHOWN_PROBLEMS:
        text += f"; {len(problems) - _SHOWN_PROBLEMS} more"
    return redact_id_numbers(f"unexpected body: {text}")


def validate(model: type[M], data: object) -> M:
    try:
        if isinstance(data, dict):
            data = _with_long_lists_validated(model, data)
        return model.model_validate(data)
    except ValidationError as error:
        # `from None`: a chained ValidationError would print the partner's values in tracebacks.
        raise MalformedResponse(describe(error)) from None


def _with_long_lists_validated(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the items of its long lists of models validated one call each.

    One validation call over a long list holds the GIL for its whole length, even in a
    worker thread; one call per item lets the event loop run in between.
    """
    done = data
    for key, item_model in _list_fields(model):
        items = data.get(key)
        if not isinstance(items, list) or len(items) < LONG_LIST:
            continue
        if done is data:
            done = dict(data)
        validated = []
        for index, item in enumerate(items):
            try:
                validated.append(item_model.model_validate(item))
            except ValidationError as error:
                raise MalformedResponse(describe(error, within=(key, index))) from None
        done[key] = validated
    return done


@lru_cache(maxsize=256)
def _list_fields(model: type[BaseModel]) -> tuple[tuple[str, type[BaseModel]], ...]:
    """The (key, item model) of each field of `model` that is a list of models: looked up
    once per model, not at every body (1 µs of a small body's validation)."""
    found = []
    for name, field in model.model_fields.items():
        item_model = _list_item_model(field.annotation)
        if item_model is not None:
            found.append((field.alias or name, item_model))
    return tuple(found)


def _list_item_model(annotation: object) -> type[BaseModel] | None:
    """`Item` when `annotation` is `list[Item]` (or `list[Item] | None`) of a pydantic model."""
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is list:
            (item,) = get_args(candidate)
            if isinstance(item, type) and issubclass(item, BaseModel):
                return item
    return None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=unique_members
)
"""Made once: `json.loads` with any option builds a new decoder (and its scanner) a call."""


def load_json(content: bytes) -> object:
    """JSON with every non-integer number as an exact `Decimal` (money is never a float).

    An object with a member named twice is refused: which of the two the partner meant
    (`"income": 99999, "income": 0`) nobody can say, and taking the last would make an
    ambiguous answer a fact. Bytes in UTF-8, -16 or -32, told apart as `json.loads` does."""
    try:
        text = content.decode(json.detect_encoding(content), "surrogatepass")
        return _DECODER.decode(text)
    except RepeatedMember:
        raise MalformedResponse("body is ambiguous JSON: an object names a member twice") from None
    except (ValueError, RecursionError):
        raise MalformedResponse("body is not JSON") from None


def parse_json(content: bytes, model: type[M]) -> M:
    return validate(model, load_json(content))


def json_parser(model: type[M]) -> Callable[[bytes], M]:
    """A `parse` callback for `connectors.http.request`."""
    return lambda body: parse_json(body, model)


def parse_xml(content: bytes) -> Element:
    """XML through defusedxml: entity expansion and external references are refused.

    Fed in slices: one parser call over a whole large body would hold the GIL throughout.
    """
    parser = defusedxml.ElementTree.XMLParser()
    try:
        for start in range(0, len(content), XML_FEED_BYTES):
            parser.feed(content[start : start + XML_FEED_BYTES])
        root: Element = parser.close()
    # DefusedXmlException is a ValueError; a prolog naming an encoding Python does not know
    # (`encoding="bogus"`) is a LookupError.
    except (ParseError, ValueError, LookupError):
        raise MalformedResponse("body is not well-formed XML") from None
    return root


def partner_error_code(content: bytes) -> str | None:
    """The partner's short error code from an error body, whatever its format, if any."""
    candidates: list[object] = []
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        try:
            candidates.append(defusedxml.ElementTree.fromstring(content).get("code"))
        except (ParseError, ValueError, LookupError):
            return None
    else:
        if isinstance(data, dict):
            nested = data.get("error")
            candidates += [data.get("code"), data.get("ret")]
            if isinstance(nested, dict):
                candidates.append(nested.get("code"))
    for candidate in candidates:
        if isinstance(candidate, str | int) and not isinstance(candidate, bool):
            code = safe_code(candidate)
            if code != "?":
                return code
    return None
