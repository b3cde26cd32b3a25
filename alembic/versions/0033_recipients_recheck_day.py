"""recipients: the day of the month their re-check schedule keeps to

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 11:20:00

A schedule approved on the 31st falls on the 28th in February; the due date after it must
be the 31st again (of August, say), not the 28th: the day is kept with the recipient.
Recipients approved before keep their due date's own day (null).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.add_column(sa.Column("recheck_day", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.drop_column("recheck_day")
