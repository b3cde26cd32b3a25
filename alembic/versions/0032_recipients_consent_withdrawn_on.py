"""recipients: the day the authorization on record was withdrawn

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 08:45:00

A withdrawal ends a recipient's authorization (it expired the day before). A renewal must
then be a new authorization signed on or after that day: the day is kept, since an
authorization that simply ran out may be renewed by one signed before it did.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.add_column(sa.Column("consent_withdrawn_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipients") as batch_op:
        batch_op.drop_column("consent_withdrawn_on")
