"""batches: a kind (uploaded or re-check) and when the batch completed

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 14:40:00

`completed_at` is set once, by whichever process first finds a closed or cancelled batch
with no verification left to run; that same transaction records `batch.completed`.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="upload")
        )
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    # The sweep looks for ended batches not yet completed: few rows, found by this index.
    op.create_index("ix_batches_uncompleted", "batches", ["status", "completed_at"])


def downgrade() -> None:
    op.drop_index("ix_batches_uncompleted", table_name="batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("completed_at")
        batch.drop_column("kind")
