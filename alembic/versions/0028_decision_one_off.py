"""a linshi approval records the one-off amount it grants

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 05:00:00

Temporary aid (临时救助) is paid once: its approval grants the report's one-off amount or,
when the report computed none, the one the approver states. The decision keeps it, sealed
like every amount, as an approval onto the roll keeps its monthly benefit.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("one_off_amount_sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("one_off_amount_sealed")
