from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.crypto.sealed import Sealed, SealedModel, SealedText
from service.models.base import Base, UTCDateTime, new_id, utcnow


class Report(SealedModel, Base):
    """The scored report as handed to the approver; `body` is the API document. Body and
    near-relative matches are sealed."""

    __tablename__ = "reports"
    SEALED_ROW = ("verification_id",)

    verification_id: Mapped[str] = mapped_column(
        ForeignKey("verifications.id", ondelete="CASCADE"), primary_key=True
    )
    body_sealed: Mapped[str] = mapped_column(SealedText)
    report_hash: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(128))
    policy_hash: Mapped[str] = mapped_column(String(64))
    near_relatives_sealed: Mapped[str] = mapped_column(
        SealedText, doc="Registry matches at scoring time (internal)"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    body = Sealed[dict[str, Any]]("body_sealed", "json")
    near_relatives = Sealed[list[dict[str, Any]]]("near_relatives_sealed", "json")


class Decision(SealedModel, Base):
    """An approver's decision; append-only, bound to the report it was made on. An
    approval onto the roll keeps the monthly benefit it granted, a linshi approval the
    one-off amount, sealed."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    verification_id: Mapped[str] = mapped_column(
        ForeignKey("verifications.id", ondelete="CASCADE"), index=True, unique=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    decided_by_name: Mapped[str | None] = mapped_column(
        String(128), default=None, doc="Whom the deciding key belonged to, when it decided"
    )
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    report_hash: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[str | None] = mapped_column(String(128))
    monthly_benefit_sealed: Mapped[str | None] = mapped_column(SealedText, default=None)
    one_off_amount_sealed: Mapped[str | None] = mapped_column(SealedText, default=None)
    recipient_id: Mapped[str | None] = mapped_column(
        String(36),
        default=None,
        index=True,
        doc="An approval of a changed household: the recipient whose household it replaced",
    )

    monthly_benefit = Sealed[Decimal | None]("monthly_benefit_sealed", "money")
    one_off_amount = Sealed[Decimal | None]("one_off_amount_sealed", "money")
