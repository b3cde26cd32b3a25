"""recipients: an index on approved_verification_id

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 07:40:00

The retention purge keeps the raw records of the verification a household on the roll is
re-checked against (its approved one): every candidate is looked up among the recipients
by that column, so it is indexed.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_recipients_approved_verification_id", "recipients", ["approved_verification_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_approved_verification_id", table_name="recipients")
