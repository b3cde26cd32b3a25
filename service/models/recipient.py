"""The roll of recipients and their scheduled re-checks."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.crypto.sealed import Sealed, SealedModel, SealedText
from service.models.base import Base, UTCDateTime, new_id, utcnow


class Recipient(SealedModel, Base):
    """A household receiving a benefit: made by an approved decision, re-checked on a
    schedule, and off the roll (with the reason) once rejected at a re-check or stopped.
    The benefit is sealed: with the standard it tells the household's income."""

    __tablename__ = "recipients"
    __table_args__ = (
        Index("ix_recipients_created", "created_at", "id"),
        Index("ix_recipients_region_code", "region_code"),
        Index("ix_recipients_reference", "reference"),
        Index("ix_recipients_status_next_recheck_on", "status", "next_recheck_on"),
        # The retention purge skips what a household on the roll is re-checked against.
        Index("ix_recipients_approved_verification_id", "approved_verification_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(128))
    program: Mapped[str] = mapped_column(String(16))
    area: Mapped[str] = mapped_column(String(8))
    region_code: Mapped[str] = mapped_column(String(6))
    township_code: Mapped[str | None] = mapped_column(String(9), default=None)
    recheck_class: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    monthly_benefit_sealed: Mapped[str | None] = mapped_column(SealedText, default=None)
    origin_verification_id: Mapped[str] = mapped_column(
        ForeignKey("verifications.id"),
        unique=True,
        doc="The verification whose approval put the household on the roll",
    )
    approved_verification_id: Mapped[str] = mapped_column(
        ForeignKey("verifications.id"),
        doc="The latest approved verification (its report is "
        "what the next re-check is compared with)",
    )
    approved_on: Mapped[date] = mapped_column(Date)
    next_recheck_on: Mapped[date] = mapped_column(Date)
    recheck_day: Mapped[int | None] = mapped_column(
        SmallInteger,
        default=None,
        doc="The day of the month the re-check schedule keeps to (the approval's): a due "
        "date clamped to a shorter month's end is followed by this day again; None: the "
        "due date's own day (recipients approved before it was kept)",
    )
    consent_document_id: Mapped[str] = mapped_column(String(64))
    consent_signed_on: Mapped[date] = mapped_column(Date)
    consent_expires_on: Mapped[date | None] = mapped_column(Date, default=None)
    consent_withdrawn_on: Mapped[date | None] = mapped_column(
        Date,
        default=None,
        doc="When the authorization on record was withdrawn (its expiry is the day before): "
        "a renewal is signed on or after it",
    )
    left_on: Mapped[date | None] = mapped_column(Date, default=None)
    left_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    monthly_benefit = Sealed[Decimal | None]("monthly_benefit_sealed", "money")


class Recheck(Base):
    """One scheduled re-check of one recipient: at most one per recipient and due date,
    however many schedulers run (the unique constraint decides)."""

    __tablename__ = "rechecks"
    __table_args__ = (
        UniqueConstraint("recipient_id", "due_on"),
        Index("ix_rechecks_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    recipient_id: Mapped[str] = mapped_column(
        ForeignKey("recipients.id", ondelete="CASCADE"), index=True
    )
    due_on: Mapped[date] = mapped_column(Date)
    region_code: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(16))
    verification_id: Mapped[str | None] = mapped_column(
        ForeignKey("verifications.id"), default=None, unique=True
    )
    batch_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """How often its verification failed."""
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When a failed one may be started again (`service.recipient.repository.retry_delay`)."""
