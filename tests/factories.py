"""Test data builders: valid ID numbers, verification bodies and near-relative
registrations."""

import itertools
import re
from datetime import date, timedelta
from typing import Any

from schemas.identity import check_character

_sequence = itertools.count(100)


def make_id_number(
    region: str = "530102", birth: str = "19900101", sequence: int | None = None
) -> str:
    """A valid GB 11643 ID number; each call without `sequence` gives a new person."""
    number = next(_sequence) if sequence is None else sequence
    if sequence is None and number >= 1000:
        # Three digits of sequence wrap after 1000 people: move the birth date instead, so
        # a long test session never hands out the same person twice.
        birth = (
            date.fromisoformat(f"{birth[:4]}-{birth[4:6]}-{birth[6:]}")
            + timedelta(days=number // 1000)
        ).strftime("%Y%m%d")
    first17 = f"{region}{birth}{number % 1000:03d}"
    return first17 + check_character(first17)


_OWN_IDENTIFIERS = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}", re.IGNORECASE
)


def without_identifiers(text: str) -> str:
    """`text` with hedui's own identifiers (UUIDs, request ids) taken out: their random hex
    digits may spell any few digits a test looks for, by chance."""
    return _OWN_IDENTIFIERS.sub("<id>", text)


def traces_of_id_number(id_number: str, text: str) -> list[str]:
    """Where `text` shows any part of `id_number` a mask keeps (its last four, which
    the masked form shows too), hedui's own identifiers aside."""
    scrubbed = without_identifiers(text)
    return [part for part in (id_number, id_number[-4:]) if part in scrubbed]


def verification_body(
    members: list[dict[str, Any]],
    *,
    region_code: str = "530102",
    program: str = "dibao",
    area: str = "urban",
    as_of: str | None = "2026-11-20",
    reference: str = "case-test",
    township_code: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": reference,
        "program": program,
        "region_code": region_code,
        "area": area,
        "consent": {"document_id": "AUTH-0001", "signed_on": "2026-11-01"},
        "members": members,
    }
    if as_of is not None:
        body["as_of"] = as_of
    if township_code is not None:
        body["township_code"] = township_code
    return body


def member(
    id_number: str, name: str = "张三", relation: str = "applicant", declared: Any = 0
) -> dict[str, Any]:
    return {
        "id_number": id_number,
        "name": name,
        "relation": relation,
        "declared_monthly_income": declared,
    }


def near_relative_body(relative_id_number: str, **changes: Any) -> dict[str, Any]:
    """A registration for `POST /v1/near-relatives` (the spouse of a village committee's
    director in county 530102), with `changes`."""
    body = {
        "region_code": "530102",
        "staff_name": "李建国",
        "staff_position": "村委会主任",
        "relative_id_number": relative_id_number,
        "relative_name": "张三丰",
        "relationship": "spouse",
    }
    return {**body, **changes}
