"""connector_states: when a probe of the connector last started, in any process

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 16:10:00

Every API process and worker ran its own health probes, so a partner was asked once per
process per interval. A process now takes a connector's probe turn with one conditional
UPDATE of `last_probe_started_at` and probes only when it won: the deployment as a whole
asks each partner once per interval. NULL: never probed since this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connector_states") as batch_op:
        batch_op.add_column(
            sa.Column("last_probe_started_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("connector_states") as batch_op:
        batch_op.drop_column("last_probe_started_at")
