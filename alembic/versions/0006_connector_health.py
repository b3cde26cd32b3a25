"""connector health: shared breaker and pause state, events, call buckets, dashboard sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connector_states",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("breaker", sa.String(16), nullable=False),
        sa.Column("breaker_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breaker_open_s", sa.Float(), nullable=False),
        sa.Column("breaker_version", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_by", sa.String(128), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_outcome", sa.String(16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_probe_ok", sa.Boolean(), nullable=True),
        sa.Column("last_probe_latency_ms", sa.Float(), nullable=True),
        sa.Column("last_probe_detail", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connector_states")),
    )
    op.create_table(
        "connector_events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_events")),
    )
    op.create_index("ix_connector_events_connector_at", "connector_events", ["connector", "at"])
    op.create_table(
        "connector_buckets",
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("process", sa.String(36), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.Column("latency", sa.JSON(), nullable=False),
        sa.Column("probes", sa.Integer(), nullable=False),
        sa.Column("probe_failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("connector", "start", "process", name=op.f("pk_connector_buckets")),
    )
    op.create_index("ix_connector_buckets_start", "connector_buckets", ["start"])
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("api_key_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index("ix_dashboard_sessions_api_key_id", "dashboard_sessions", ["api_key_id"])


def downgrade() -> None:
    op.drop_table("dashboard_sessions")
    op.drop_table("connector_buckets")
    op.drop_table("connector_events")
    op.drop_table("connector_states")
