"""early warnings raised by re-checks

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warnings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recipient_id", sa.String(length=36), nullable=False),
        sa.Column("recheck_id", sa.String(length=36), nullable=False),
        sa.Column("verification_id", sa.String(length=36), nullable=False),
        sa.Column("previous_verification_id", sa.String(length=36), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("township_code", sa.String(length=9), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("member", sa.String(length=18), nullable=True),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("proposed_action", sa.String(length=8), nullable=False),
        sa.Column("benefit_before", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("benefit_after", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("changes_eligibility", sa.Boolean(), nullable=False),
        sa.Column("review_verification_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=36), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=36), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["api_keys.id"], name=op.f("fk_warnings_acknowledged_by_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["previous_verification_id"],
            ["verifications.id"],
            name=op.f("fk_warnings_previous_verification_id_verifications"),
        ),
        sa.ForeignKeyConstraint(
            ["recheck_id"],
            ["rechecks.id"],
            name=op.f("fk_warnings_recheck_id_rechecks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_warnings_recipient_id_recipients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["api_keys.id"], name=op.f("fk_warnings_resolved_by_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["review_verification_id"],
            ["verifications.id"],
            name=op.f("fk_warnings_review_verification_id_verifications"),
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_warnings_verification_id_verifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warnings")),
    )
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.create_index("ix_warnings_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_warnings_recipient_id"), ["recipient_id"], unique=False
        )
        batch_op.create_index("ix_warnings_region_code", ["region_code"], unique=False)
        batch_op.create_index("ix_warnings_status", ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_warnings_verification_id"), ["verification_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warnings_verification_id"))
        batch_op.drop_index("ix_warnings_status")
        batch_op.drop_index("ix_warnings_region_code")
        batch_op.drop_index(batch_op.f("ix_warnings_recipient_id"))
        batch_op.drop_index("ix_warnings_created")

    op.drop_table("warnings")
