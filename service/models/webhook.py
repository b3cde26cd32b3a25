"""Webhook subscriptions, the transactional outbox of events, and their deliveries."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.crypto.sealed import Sealed, SealedModel, SealedText
from service.models.base import Base, UTCDateTime, new_id, utcnow


class Webhook(SealedModel, Base):
    """A receiver of events in its creator's region. The signing secret is sealed: it
    must be recoverable to sign each delivery, so it cannot be a one-way hash."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    secret_sealed: Mapped[str] = mapped_column(SealedText, doc="Signs every delivery; never shown")
    region_prefix: Mapped[str] = mapped_column(
        String(9), doc="'' means every region; 9 digits: one township"
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    secret = Sealed[str]("secret_sealed")


class OutboxEvent(Base):
    """An event, written in the transaction that made it happen (the outbox): it exists if
    and only if what it announces was committed. Its id is the receivers' de-duplication key."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_created", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(6))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to one webhook: pending until a 2xx, retried with backoff, dead after the
    configured number of attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_created", "webhook_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
