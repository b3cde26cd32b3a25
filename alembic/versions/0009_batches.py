"""batches: many households at once, one verification each; refused lines kept per line

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("region_prefix", sa.String(length=9), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lines_received", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("invalid_lines", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["api_keys.id"], name=op.f("fk_batches_created_by_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("created_by", "idempotency_key", name="uq_batches_idempotency"),
    )
    op.create_index("ix_batches_created", "batches", ["created_at", "id"], unique=False)
    op.create_table(
        "batch_errors",
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("problem", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_batch_errors_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "line", name=op.f("pk_batch_errors")),
    )
    with op.batch_alter_table("verifications") as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("batch_line", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_verifications_batch_id_batches",
            "batches",
            ["batch_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint("uq_verifications_batch_line", ["batch_id", "batch_line"])
        batch_op.create_index(
            "ix_verifications_batch_status",
            ["batch_id", "status", "recommendation"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("verifications") as batch_op:
        batch_op.drop_index("ix_verifications_batch_status")
        batch_op.drop_constraint("uq_verifications_batch_line", type_="unique")
        batch_op.drop_constraint("fk_verifications_batch_id_batches", type_="foreignkey")
        batch_op.drop_column("batch_line")
        batch_op.drop_column("batch_id")
    op.drop_table("batch_errors")
    op.drop_index("ix_batches_created", table_name="batches")
    op.drop_table("batches")
