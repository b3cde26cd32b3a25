"""`transient` builds a model object as its constructor does, without the assignment events:
every column and sealed attribute reads the same, set or not."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import inspect

from service.crypto.sealed import Pending, sealed_fields
from service.models import Member, SourceResult, Verification
from service.models.base import Base, transient

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)

CASES: list[tuple[type[Base], dict[str, Any], dict[str, Any]]] = [
    (
        Verification,
        {
            "id": "v-1",
            "created_at": NOW,
            "reference": "case-1",
            "program": "dibao",
            "region_code": "530103",
            "township_code": None,
            "area": "urban",
            "as_of": date(2026, 12, 6),
            "consent_document_id": "AUTH-1",
            "consent_signed_on": date(2026, 12, 1),
            "support_mode": None,
            "care_grade": None,
            "created_by": "key-1",
            "status": "queued",
        },
        {},
    ),
    (
        Member,
        {"position": 2, "relation": "child"},
        {
            "id_number": "11010519491231002X",
            "name": "张三",
            "declared_monthly_income": Decimal("300.00"),
        },
    ),
    (
        SourceResult,
        {"source": "bank", "connector_version": "1.2", "status": "pending"},
        {"records": []},
    ),
]


@pytest.mark.parametrize(
    ("cls", "plain", "sealed"), CASES, ids=["verification", "member", "source"]
)
def test_reads_as_the_constructor_built_it(
    cls: type[Base], plain: dict[str, Any], sealed: dict[str, Any]
) -> None:
    built = cls(**plain, **sealed)
    fast = transient(cls, **plain)
    for name, value in sealed.items():
        setattr(fast, name, value)
    names = [column.key for column in inspect(cls).column_attrs]
    names += [field.name for field in sealed_fields(cls)]
    for name in names:
        assert _read(fast, name) == _read(built, name), name
    assert inspect(fast).transient


def _read(obj: Base, name: str) -> Any:
    """An attribute's value; a sealed column's plaintext while it waits to be sealed."""
    value = getattr(obj, name)
    return value.value if isinstance(value, Pending) else value
