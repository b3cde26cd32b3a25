"""What the scorer's input and the partners' question are made of, in a stored verification.

`assessment_input` and `household_query` read a verification through these shapes: the
ORM objects (`service.models.Verification` with its members and sources loaded) give
them, and so do the rows a worker's claim reads with Core (`VerificationRow`,
`VerificationRepository.claim_reading`), their sealed values opened.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol


class StoredMember(Protocol):
    @property
    def id_number(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def relation(self) -> str: ...
    @property
    def declared_monthly_income(self) -> Decimal: ...


class StoredSource(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def records(self) -> list[dict[str, Any]] | None:
        """Opened only when read: not for a pending source (it holds none)."""
        ...

    @property
    def fetched_at(self) -> datetime | None: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def connector_version(self) -> str | None: ...
    @property
    def collects(self) -> int: ...
    @property
    def token_sealed(self) -> str | None: ...


class StoredVerification(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def region_code(self) -> str: ...
    @property
    def program(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def as_of(self) -> date: ...
    @property
    def consent_document_id(self) -> str: ...
    @property
    def support_mode(self) -> str | None: ...
    @property
    def care_grade(self) -> int | None: ...
    @property
    def members(self) -> Sequence[StoredMember]: ...
    @property
    def sources(self) -> Sequence[StoredSource]: ...


@dataclass(frozen=True, slots=True)
class MemberRow:
    id_number: str
    name: str
    relation: str
    declared_monthly_income: Decimal


@dataclass(frozen=True, slots=True)
class SourceRow:
    source: str
    status: str
    records: list[dict[str, Any]] | None
    """None for a pending source: its records are not opened."""
    fetched_at: datetime | None
    detail: str | None
    connector_version: str | None
    collects: int
    token_sealed: str | None


@dataclass(frozen=True, slots=True)
class VerificationRow:
    """A verification with its members (by position) and sources (by name), read with
    Core: what building a run's `Claimed` from the ORM objects would read of them."""

    id: str
    region_code: str
    program: str
    area: str
    as_of: date
    consent_document_id: str
    support_mode: str | None
    care_grade: int | None
    members: tuple[MemberRow, ...]
    sources: tuple[SourceRow, ...]
