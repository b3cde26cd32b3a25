"""no index on verification_id beside the unique constraints that lead with it

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 16:55:00

`verification_members` and `source_results` each had an index on `verification_id` and a
unique constraint on (`verification_id`, ...), whose index serves every lookup by
`verification_id` alone (a verification's members or sources, the cascade of a deletion)
just as well. The single-column ones only cost a write: three members and six sources per
verification, one more B-tree entry each.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = (
    ("ix_verification_members_verification_id", "verification_members"),
    ("ix_source_results_verification_id", "source_results"),
)


def upgrade() -> None:
    for index, table in DROPPED:
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    for index, table in DROPPED:
        op.create_index(index, table, ["verification_id"])
