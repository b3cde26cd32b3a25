"""parked sources: a partner's "accepted, collect later" kept with its source row

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 13:40:00

A source the partner has accepted but not answered yet is `awaiting`: its row keeps the
partner's token for the question (sealed), when to collect next, how often it was
collected, and the partner's own deadline. The verification counts its awaiting sources,
so the sweep that resumes abandoned runs leaves one that only waits for collects alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_results") as batch_op:
        batch_op.add_column(sa.Column("token_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("collect_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("collect_deadline", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("collects", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("collect_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            "ix_source_results_status_collect_at", ["status", "collect_at"], unique=False
        )
    with op.batch_alter_table("verifications") as batch_op:
        batch_op.add_column(sa.Column("awaiting", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("verifications") as batch_op:
        batch_op.drop_column("awaiting")
    with op.batch_alter_table("source_results") as batch_op:
        batch_op.drop_index("ix_source_results_status_collect_at")
        batch_op.drop_column("collect_failures")
        batch_op.drop_column("collects")
        batch_op.drop_column("collect_deadline")
        batch_op.drop_column("collect_at")
        batch_op.drop_column("token_sealed")
