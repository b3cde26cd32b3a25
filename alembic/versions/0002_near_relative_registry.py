"""near relative registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:35:48.824059
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "near_relatives",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("staff_name", sa.String(length=64), nullable=False),
        sa.Column("staff_position", sa.String(length=64), nullable=False),
        sa.Column("relative_id_number", sa.String(length=18), nullable=False),
        sa.Column("relative_name", sa.String(length=64), nullable=False),
        sa.Column("relationship", sa.String(length=16), nullable=False),
        sa.Column("registered_by", sa.String(length=36), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=36), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registered_by"],
            ["api_keys.id"],
            name=op.f("fk_near_relatives_registered_by_api_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["api_keys.id"], name=op.f("fk_near_relatives_revoked_by_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_near_relatives")),
    )
    with op.batch_alter_table("near_relatives", schema=None) as batch_op:
        batch_op.create_index("ix_near_relatives_region_code", ["region_code"], unique=False)
        batch_op.create_index("ix_near_relatives_registered", ["registered_at", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_near_relatives_relative_id_number"), ["relative_id_number"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("near_relatives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_near_relatives_relative_id_number"))
        batch_op.drop_index("ix_near_relatives_registered")
        batch_op.drop_index("ix_near_relatives_region_code")

    op.drop_table("near_relatives")
