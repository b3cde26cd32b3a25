"""four-level scoping: a verification's township, township-wide keys and webhooks

A verification may name its township (a 9-digit 乡镇/街道 code whose first 6 digits are
its `region_code`); an API key's region, and so a webhook's, may be a township code.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("township_code", sa.String(length=9), nullable=True))
        batch_op.create_index("ix_verifications_township_code", ["township_code"], unique=False)
    # SQLite does not enforce a VARCHAR's length, and rebuilding api_keys there would
    # trip over the tables that refer to it: only PostgreSQL widens the column.
    if op.get_bind().dialect.name == "postgresql":
        for table in ("api_keys", "webhooks"):
            op.alter_column(
                table,
                "region_prefix",
                existing_type=sa.String(length=6),
                type_=sa.String(length=9),
                existing_nullable=False,
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("webhooks", "api_keys"):
            op.alter_column(
                table,
                "region_prefix",
                existing_type=sa.String(length=9),
                type_=sa.String(length=6),
                existing_nullable=False,
            )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index("ix_verifications_township_code")
        batch_op.drop_column("township_code")
