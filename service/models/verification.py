from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.crypto.sealed import Sealed, SealedModel, SealedText
from service.models.base import Base, UTCDateTime, new_id, utcnow


class Verification(Base):
    """One household verification request and where it stands."""

    __tablename__ = "verifications"
    __table_args__ = (
        Index("ix_verifications_created", "created_at", "id"),
        Index("ix_verifications_region_code", "region_code"),
        Index("ix_verifications_township_code", "township_code"),
        Index("ix_verifications_reference", "reference"),
        Index("ix_verifications_status_lease", "status", "lease_expires_at"),
        # A batch's counts are one GROUP BY over this index; a line is stored once.
        Index("ix_verifications_batch_status", "batch_id", "status", "recommendation"),
        UniqueConstraint("batch_id", "batch_line", name="uq_verifications_batch_line"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(128))
    program: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(6))
    # The township (乡镇/街道, 9 digits starting with region_code), when the caller named it.
    township_code: Mapped[str | None] = mapped_column(String(9), default=None)
    area: Mapped[str] = mapped_column(String(8))
    as_of: Mapped[date] = mapped_column(Date)
    consent_document_id: Mapped[str] = mapped_column(String(64))
    consent_signed_on: Mapped[date] = mapped_column(Date)
    # tekun only: the arrangement the standard and care subsidy were chosen for; kept so the
    # report can be rebuilt identically.
    support_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    care_grade: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    recommendation: Mapped[str | None] = mapped_column(String(16), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    records_purged_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime,
        default=None,
        doc="when the raw partner records were purged (retention); the report remains",
    )
    # Set when it was withdrawn (consent withdrawn, or the application): by whom (key id and
    # the key holder's name then), why, and the status it had (`completed`: its report stays).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    withdrawn_by: Mapped[str | None] = mapped_column(String(36), default=None)
    withdrawn_by_name: Mapped[str | None] = mapped_column(String(128), default=None)
    withdrawal_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    withdrawn_from: Mapped[str | None] = mapped_column(String(16), default=None)
    # Who runs it now (a process's run owner id) and until when, unless it renews the lease.
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Set for a verification submitted in a batch: the batch and the line it came from.
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), default=None
    )
    batch_line: Mapped[int | None] = mapped_column(Integer, default=None)
    # How many of its sources are `awaiting` (parked with the partner, collected later):
    # a run that ends with some releases its lease; the last collect finishes it.
    awaiting: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    members: Mapped[list["Member"]] = relationship(
        back_populates="verification",
        lazy="raise",
        order_by="Member.position",
        cascade="all, delete-orphan",
    )
    sources: Mapped[list["SourceResult"]] = relationship(
        back_populates="verification",
        lazy="raise",
        order_by="SourceResult.source",
        cascade="all, delete-orphan",
    )


class Member(SealedModel, Base):
    """A household member. The full ID number lives here (sealed) and nowhere else outside
    the DB; lookups by ID number go through its blind index. Name and declared income are
    sealed too."""

    __tablename__ = "verification_members"
    __table_args__ = (
        UniqueConstraint("verification_id", "id_number_blind"),
        Index("ix_verification_members_id_number_blind", "id_number_blind"),
    )
    SEALED_ROW = ("verification_id", "position")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Looked up through the unique constraint, which leads with it (migration 0024).
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    id_number_sealed: Mapped[str] = mapped_column(SealedText)
    id_number_blind: Mapped[str] = mapped_column(String(64))
    name_sealed: Mapped[str] = mapped_column(SealedText)
    relation: Mapped[str] = mapped_column(String(16))
    declared_monthly_income_sealed: Mapped[str] = mapped_column(SealedText)

    verification: Mapped[Verification] = relationship(back_populates="members", lazy="raise")

    id_number = Sealed[str]("id_number_sealed", blind="id_number_blind")
    name = Sealed[str]("name_sealed")
    declared_monthly_income = Sealed[Decimal]("declared_monthly_income_sealed", "money")


class SourceResult(SealedModel, Base):
    """One partner source's answer, stored as soon as it arrives so a resumed run skips it.
    The raw records are sealed.

    An `awaiting` source (the partner accepted the question and answers later) keeps the
    partner's token for it (sealed), when it is next collected, how many collects it had,
    and the partner's deadline, after which it settles as `timeout`."""

    __tablename__ = "source_results"
    __table_args__ = (
        UniqueConstraint("verification_id", "source"),
        # The collectors' index: awaiting sources only, so that no settle of a pending
        # source is ever planned through it (migration 0023).
        Index(
            "ix_source_results_awaiting_collect_at",
            "collect_at",
            postgresql_where=text("status = 'awaiting'"),
            sqlite_where=text("status = 'awaiting'"),
        ),
    )
    SEALED_ROW = ("verification_id", "source")

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Looked up through the unique constraint, which leads with it (migration 0024).
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    connector_version: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    records_sealed: Mapped[str] = mapped_column(SealedText)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    token_sealed: Mapped[str | None] = mapped_column(SealedText, default=None)
    collect_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    collect_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    collects: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Collects claimed in a row that did not end cleanly (a bug of ours, a crash): capped.
    collect_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    verification: Mapped[Verification] = relationship(back_populates="sources", lazy="raise")

    records = Sealed[list[dict[str, Any]]]("records_sealed", "json")
    token = Sealed[str]("token_sealed")


class IdempotencyKey(Base):
    """Remembers which verification an `Idempotency-Key` created, per caller."""

    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), doc="HMAC-SHA256 of the request")
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
