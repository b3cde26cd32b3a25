"""per-partner throttles shared by every process: concurrency slots and a rate schedule

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 10:30:00

PostgreSQL only: on SQLite hedui runs in one process and keeps its throttles in memory.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # One row per slot of a partner's agreed concurrency: a call holds one while it is in
    # flight; `held_until` frees the slots of a process that died.
    op.create_table(
        "connector_throttle_slots",
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("held_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("connector", "slot", name=op.f("pk_connector_throttle_slots")),
    )
    # One row per partner with an agreed rate: when its next call may start.
    op.create_table(
        "connector_throttle_rates",
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("connector", name=op.f("pk_connector_throttle_rates")),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("connector_throttle_rates")
    op.drop_table("connector_throttle_slots")
