"""recipients and their scheduled re-checks (one per recipient and due date)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recipients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("program", sa.String(length=16), nullable=False),
        sa.Column("area", sa.String(length=8), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("township_code", sa.String(length=9), nullable=True),
        sa.Column("recheck_class", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("monthly_benefit", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("origin_verification_id", sa.String(length=36), nullable=False),
        sa.Column("approved_verification_id", sa.String(length=36), nullable=False),
        sa.Column("approved_on", sa.Date(), nullable=False),
        sa.Column("next_recheck_on", sa.Date(), nullable=False),
        sa.Column("consent_document_id", sa.String(length=64), nullable=False),
        sa.Column("consent_signed_on", sa.Date(), nullable=False),
        sa.Column("consent_expires_on", sa.Date(), nullable=True),
        sa.Column("left_on", sa.Date(), nullable=True),
        sa.Column("left_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approved_verification_id"],
            ["verifications.id"],
            name=op.f("fk_recipients_approved_verification_id_verifications"),
        ),
        sa.ForeignKeyConstraint(
            ["origin_verification_id"],
            ["verifications.id"],
            name=op.f("fk_recipients_origin_verification_id_verifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipients")),
        sa.UniqueConstraint(
            "origin_verification_id", name=op.f("uq_recipients_origin_verification_id")
        ),
    )
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.create_index("ix_recipients_created", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_recipients_region_code", ["region_code"], unique=False)
        batch_op.create_index(
            "ix_recipients_status_next_recheck_on", ["status", "next_recheck_on"], unique=False
        )

    op.create_table(
        "rechecks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recipient_id", sa.String(length=36), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_rechecks_recipient_id_recipients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_rechecks_verification_id_verifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rechecks")),
        sa.UniqueConstraint("recipient_id", "due_on", name=op.f("uq_rechecks_recipient_id")),
        sa.UniqueConstraint("verification_id", name=op.f("uq_rechecks_verification_id")),
    )
    with op.batch_alter_table("rechecks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rechecks_recipient_id"), ["recipient_id"], unique=False
        )
        batch_op.create_index("ix_rechecks_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rechecks", schema=None) as batch_op:
        batch_op.drop_index("ix_rechecks_status")
        batch_op.drop_index(batch_op.f("ix_rechecks_recipient_id"))

    op.drop_table("rechecks")
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_recipients_status_next_recheck_on")
        batch_op.drop_index("ix_recipients_region_code")
        batch_op.drop_index("ix_recipients_created")

    op.drop_table("recipients")
