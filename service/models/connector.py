"""Connector state shared by every process: breaker, pause, last signals, call counts."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from schemas.connector import BreakerState
from service.models.base import Base, UTCDateTime, new_id, utcnow


class ConnectorState(Base):
    """One row per connector: what every process must agree on."""

    __tablename__ = "connector_states"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    breaker: Mapped[BreakerState] = mapped_column(
        Enum(
            BreakerState,
            native_enum=False,
            create_constraint=False,
            length=16,
            values_callable=lambda members: [member.value for member in members],
        ),
        default=BreakerState.closed,
    )
    breaker_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    breaker_open_s: Mapped[float] = mapped_column(Float, default=0.0)
    breaker_version: Mapped[int] = mapped_column(Integer, default=0)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_by: Mapped[str | None] = mapped_column(String(128), default=None)
    paused_reason: Mapped[str | None] = mapped_column(Text, default=None)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error_outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_probe_ok: Mapped[bool | None] = mapped_column(Boolean, default=None)
    last_probe_latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    last_probe_detail: Mapped[str | None] = mapped_column(Text, default=None)
    last_probe_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When a process last took this connector's probe turn (`take_probe_turn`): of all
    processes on the database one probes a partner at a time."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConnectorEvent(Base):
    """Append-only: operator actions (pause, resume) with who and why, breaker transitions
    and recent errors (masked)."""

    __tablename__ = "connector_events"
    __table_args__ = (Index("ix_connector_events_connector_at", "connector", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    connector: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(128), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)


class ConnectorBucket(Base):
    """Calls of one connector in one time bucket, as counted by one process."""

    __tablename__ = "connector_buckets"
    __table_args__ = (Index("ix_connector_buckets_start", "start"),)

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    process: Mapped[str] = mapped_column(String(36), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_sum: Mapped[float] = mapped_column(Float, default=0.0)
    latency: Mapped[list[Any]] = mapped_column(JSON, default=list)
    probes: Mapped[int] = mapped_column(Integer, default=0)
    probe_failures: Mapped[int] = mapped_column(Integer, default=0)


class DashboardSession(Base):
    """A person signed in to the dashboard; the cookie carries a random token, stored hashed."""

    __tablename__ = "dashboard_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
