"""Early warnings raised by re-checks."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.crypto.sealed import Sealed, SealedModel, SealedText
from service.models.base import Base, UTCDateTime, new_id, utcnow


class ChangeWarning(SealedModel, Base):
    """One change a re-check found against the recipient's approved report. It never
    changes a benefit itself: a caseworker acknowledges and resolves it, and the approver
    decides on the re-check's report.

    The evidence (plates, amounts, assets, employers) and the benefits are sealed; the
    member is stored masked."""

    __tablename__ = "warnings"
    __table_args__ = (
        Index("ix_warnings_created", "created_at", "id"),
        Index("ix_warnings_region_code", "region_code"),
        Index("ix_warnings_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    recipient_id: Mapped[str] = mapped_column(
        ForeignKey("recipients.id", ondelete="CASCADE"), index=True
    )
    recheck_id: Mapped[str] = mapped_column(ForeignKey("rechecks.id", ondelete="CASCADE"))
    verification_id: Mapped[str] = mapped_column(
        ForeignKey("verifications.id"), index=True, doc="The re-check's verification"
    )
    previous_verification_id: Mapped[str] = mapped_column(
        ForeignKey("verifications.id"), doc="The approved verification it was compared with"
    )
    region_code: Mapped[str] = mapped_column(String(6))
    township_code: Mapped[str | None] = mapped_column(String(9), default=None)
    code: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(64))
    member: Mapped[str | None] = mapped_column(String(18), default=None, doc="Masked")
    before_sealed: Mapped[str] = mapped_column(SealedText)
    after_sealed: Mapped[str] = mapped_column(SealedText)
    proposed_action: Mapped[str] = mapped_column(String(8))
    benefit_before_sealed: Mapped[str | None] = mapped_column(SealedText, default=None)
    benefit_after_sealed: Mapped[str | None] = mapped_column(SealedText, default=None)
    changes_eligibility: Mapped[bool] = mapped_column(Boolean, default=False)
    review_verification_id: Mapped[str | None] = mapped_column(
        ForeignKey("verifications.id"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str | None] = mapped_column(Text, default=None)
    """The latest note: the resolution's, else the acknowledgement's."""
    acknowledged_note: Mapped[str | None] = mapped_column(Text, default=None)
    resolved_note: Mapped[str | None] = mapped_column(Text, default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), default=None)
    acknowledged_by_name: Mapped[str | None] = mapped_column(String(128), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), default=None)
    resolved_by_name: Mapped[str | None] = mapped_column(String(128), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    before = Sealed[list[dict[str, Any]]]("before_sealed", "json", default=list)
    after = Sealed[list[dict[str, Any]]]("after_sealed", "json", default=list)
    benefit_before = Sealed[Decimal | None]("benefit_before_sealed", "money")
    benefit_after = Sealed[Decimal | None]("benefit_after_sealed", "money")
