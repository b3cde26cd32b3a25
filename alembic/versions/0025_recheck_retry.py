"""a failed re-check is started again after a wait that doubles with each failure

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 02:30:00

`failures` counts the times a re-check's verification (one recipient, one due date) failed
after asking the partners; `retry_at` is when a pass may start it again: 5 minutes after
the first failure, doubling up to a day. Until now every pass (every 5 minutes by
default) started it again, its partners asked again each time.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rechecks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rechecks", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
        batch_op.drop_column("failures")
