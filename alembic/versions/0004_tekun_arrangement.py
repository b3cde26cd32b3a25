"""keep a tekun request's support arrangement and care grade with its verification

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verifications") as batch_op:
        batch_op.add_column(sa.Column("support_mode", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("care_grade", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verifications") as batch_op:
        batch_op.drop_column("care_grade")
        batch_op.drop_column("support_mode")
