"""a decision records the monthly benefit its approval grants

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 02:50:00

An approval onto the roll grants the report's benefit or, when the report computed none,
the one the approver states: the decision keeps it (sealed, like every amount), so who
granted what stays on record after a re-check has changed the recipient's.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("monthly_benefit_sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("monthly_benefit_sealed")
