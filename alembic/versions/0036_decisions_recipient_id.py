"""decisions: the recipient whose household an approval changed

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 23:05:00

A household on the roll whose members change (a birth, a death, a marriage, a member
moving out) is verified with its members as they now are, and the approval names the
recipient (`recipient_id`): that verification becomes the recipient's approved one. The
decision keeps which recipient it changed; NULL for every other decision.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.add_column(sa.Column("recipient_id", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_decisions_recipient_id", ["recipient_id"])


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_index("ix_decisions_recipient_id")
        batch_op.drop_column("recipient_id")
