"""declarative connectors registered over the API, with every version of their specs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 08:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "declarative_connectors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_declarative_connectors")),
    )
    op.create_table(
        "declarative_connector_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("tested_ok", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["declarative_connectors.name"],
            name=op.f("fk_declarative_connector_versions_name_declarative_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_declarative_connector_versions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_declarative_connector_versions_name")),
    )
    op.create_index(
        op.f("ix_declarative_connector_versions_name"),
        "declarative_connector_versions",
        ["name"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_declarative_connector_versions_name"), table_name="declarative_connector_versions"
    )
    op.drop_table("declarative_connector_versions")
    op.drop_table("declarative_connectors")
