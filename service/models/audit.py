"""The audit trail: append-only events, the hash chain over them, signed checkpoints.

Three insert-only tables, so the application's database role needs nothing but INSERT
and SELECT on them (docs/audit.md gives the grants):

- `audit_events`: what happened: who (key id and name, role, region), the action, the
  object, when, the request id and the outcome. Written in the same transaction as the
  change it records, or, for a refused request, in a transaction of its own.
- `audit_chain`: one link per event, in chain order: `hash = SHA-256(prev_hash || event)`.
  Links are added after the fact by one chainer at a time, so recording an event never
  waits for a lock.
- `audit_checkpoints`: every so many links or minutes, an Ed25519 signature over the
  chain head, made with a key that lives outside the database.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_key_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    actor_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(16), doc="the actor's region scope; '' is all")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    object_region: Mapped[str | None] = mapped_column(
        String(16), default=None, doc="the household's region, for a verification"
    )
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    outcome: Mapped[str] = mapped_column(String(32), doc="ok, or the refusal's HTTP status")
    detail: Mapped[str | None] = mapped_column(
        Text, default=None, doc="never personal data in clear (ID numbers masked)"
    )
    subject_blind: Mapped[str | None] = mapped_column(
        String(64),
        default=None,
        index=True,
        doc="the person a request looked up, by the keyed blind index of their ID number "
        "(not hashed into the chain)",
    )


class AuditChainLink(Base):
    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id"), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    chained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=False, doc="the chain link it signs"
    )
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    key_id: Mapped[str] = mapped_column(String(16), doc="which signing key (its fingerprint)")
    signature: Mapped[str] = mapped_column(String(128), doc="Ed25519, hex")
