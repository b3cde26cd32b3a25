"""the collectors' index covers awaiting sources only

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 22:40:00

`ix_source_results_status_collect_at` (status, collect_at) served one query: awaiting
sources whose collect is due. Every settle of a source (`... WHERE verification_id = ? AND
source IN (...) AND status = 'pending'`) could use it too, and did when the table's
statistics were stale, as they are while a batch of 100,000 households fills it: the
planner ANDed the unique index with all 600,000 pending entries of this one, 25 ms per
settle instead of a fraction of one. The new index is partial (`WHERE status =
'awaiting'`), on `collect_at`: small, since few sources wait for a collect at any time,
and of no use to a settle.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING = sa.text("status = 'awaiting'")


def upgrade() -> None:
    op.drop_index("ix_source_results_status_collect_at", table_name="source_results")
    op.create_index(
        "ix_source_results_awaiting_collect_at",
        "source_results",
        ["collect_at"],
        postgresql_where=AWAITING,
        sqlite_where=AWAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_source_results_awaiting_collect_at", table_name="source_results")
    op.create_index(
        "ix_source_results_status_collect_at", "source_results", ["status", "collect_at"]
    )
