"""a warning keeps the acknowledgement's note and the resolution's apart

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 02:40:00

`note` held the last note written: resolving a warning replaced what was written when it
was acknowledged. `acknowledged_note` and `resolved_note` keep each; `note` stays the latest.
Warnings already resolved after an acknowledgement lost the first note before this
revision: only their resolution's is known (copied from `note` by the status).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resolved_note", sa.Text(), nullable=True))
    op.execute("UPDATE warnings SET acknowledged_note = note WHERE status = 'acknowledged'")
    op.execute("UPDATE warnings SET resolved_note = note WHERE status = 'resolved'")


def downgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_column("resolved_note")
        batch_op.drop_column("acknowledged_note")
