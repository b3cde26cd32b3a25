"""Data keys (wrapped by the key-encryption key, which never enters the database) and the
progress of key rotations."""

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, UTCDateTime, utcnow


class DataKey(Base):
    """One AES-256-GCM data key (`purpose` "data") or the blind-index HMAC key ("index"),
    wrapped: AES-256-GCM under the KEK, bound to its kid and purpose."""

    __tablename__ = "data_keys"

    kid: Mapped[str] = mapped_column(String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), doc="primary (seals new values) or active")
    wrapped: Mapped[str] = mapped_column(Text)
    kek_id: Mapped[str] = mapped_column(String(16), doc="fingerprint of the KEK that wrapped it")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KeyRotation(Base):
    """One re-encryption under `target_kid`: where it got to, so that it can resume."""

    __tablename__ = "key_rotations"

    target_kid: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), doc="running or done")
    step: Mapped[int] = mapped_column(Integer, default=0, doc="index of the column being done")
    after: Mapped[str | None] = mapped_column(Text, default=None, doc="last row key done")
    rewritten: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
