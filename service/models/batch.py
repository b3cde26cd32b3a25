from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, UTCDateTime, new_id, utcnow


class Batch(Base):
    """Many households submitted together; each valid one is a verification of the batch."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_created", "created_at", "id"),
        Index("ix_batches_uncompleted", "status", "completed_at"),
        UniqueConstraint("created_by", "idempotency_key", name="uq_batches_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    reference: Mapped[str | None] = mapped_column(String(128), default=None)
    # The submitting key's region: the batch is seen by keys whose region covers it.
    region_prefix: Mapped[str] = mapped_column(String(9))
    created_by: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    # What the uploads under `idempotency_key` stored: lines 1 to `idempotent_lines`, and a
    # keyed hash chained over them line by line, to which a repeat of the upload is held.
    # None: not kept (no key, or a batch older than the digest).
    idempotent_lines: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    idempotent_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # `upload` (POST /v1/batches) or `recheck` (the due re-checks of one region and day).
    kind: Mapped[str] = mapped_column(String(16), default="upload", server_default="upload")
    # Every line up to this one has been read and stored (as a verification or an error).
    lines_received: Mapped[int] = mapped_column(Integer, default=0)
    households: Mapped[int] = mapped_column(Integer, default=0)
    invalid_lines: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Set once, with the `batch.completed` event, when closed (or cancelled) and nothing is
    # left to run.
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class BatchLineError(Base):
    """A refused line: its problem (field names and reasons, never the values sent)."""

    __tablename__ = "batch_errors"

    batch_id: Mapped[str] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    problem: Mapped[dict[str, Any]] = mapped_column(JSON)
