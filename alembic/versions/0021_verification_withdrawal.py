"""verifications: withdrawal (who, when, why, and from which status)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 16:40:00

A verification can be withdrawn (`POST /v1/verifications/{id}/withdraw`): its status
becomes `withdrawn` (statuses are plain strings, no constraint to change), and these
columns keep who withdrew it, when, why and what status it had. No existing row is
withdrawn, so all stay empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verifications") as batch:
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdrawn_by", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("withdrawn_by_name", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("withdrawal_reason", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("withdrawn_from", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verifications") as batch:
        batch.drop_column("withdrawn_from")
        batch.drop_column("withdrawal_reason")
        batch.drop_column("withdrawn_by_name")
        batch.drop_column("withdrawn_by")
        batch.drop_column("withdrawn_at")
