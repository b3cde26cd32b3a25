"""batches: what an Idempotency-Key's upload stored, so that a repeat can be compared

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 06:00:00

A repeat of `POST /v1/batches` with the same Idempotency-Key continues the batch that key
made, skipping the lines it has. To tell a resend of that upload from a different body
under the same key, the batch keeps how many lines the key's uploads stored and a keyed
hash chained over them, line by line (never the lines themselves). Batches made before
this have no digest, and their repeats are not compared.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(
            sa.Column("idempotent_lines", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("idempotent_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("idempotent_digest")
        batch.drop_column("idempotent_lines")
