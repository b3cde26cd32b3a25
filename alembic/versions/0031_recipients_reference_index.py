"""recipients: an index on reference

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 19:40:00

A case-management system finds the recipient its case became by the case's reference
(`GET /v1/recipients?reference=...`): looked up among the whole roll, so it is indexed.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_recipients_reference", "recipients", ["reference"])


def downgrade() -> None:
    op.drop_index("ix_recipients_reference", table_name="recipients")
