"""API key lifecycle: expiry, last use, revocation reason; decisions keep the key's name

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 14:00:00

Keys created before this revision never expired. Cutting them off on upgrade day would
stop every integration without warning, and leaving them valid forever is the hole this
revision closes: each usable one expires 90 days after the upgrade (a full rotation
period), and `hedui apikey list` shows it. Revoked keys keep no expiry (they can no longer
be used anyway). A blank name (none are created so, but a database may have been edited)
becomes `unnamed key <id prefix>`. Existing decisions get the name of the key that made
them.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_reason", sa.String(length=500), nullable=True))
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_by_name", sa.String(length=128), nullable=True))

    keys = sa.table(
        "api_keys",
        sa.column("id", sa.String()),
        sa.column("name", sa.String()),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    # Bound as a parameter, so each dialect stores it in its own datetime format.
    op.execute(
        keys.update()
        .where(keys.c.revoked_at.is_(None))
        .values(expires_at=datetime.now(UTC) + LEGACY_LIFETIME)
    )
    blank = sa.func.trim(keys.c.name) == ""
    op.execute(
        keys.update()
        .where(blank)
        .values(name=sa.literal("unnamed key ") + sa.func.substr(keys.c.id, 1, 8))
    )
    decisions = sa.table(
        "decisions", sa.column("decided_by", sa.String()), sa.column("decided_by_name", sa.String())
    )
    op.execute(
        decisions.update().values(
            decided_by_name=sa.select(keys.c.name)
            .where(keys.c.id == decisions.c.decided_by)
            .scalar_subquery()
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("decided_by_name")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("revoked_reason")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
