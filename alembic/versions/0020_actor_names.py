"""near-relative registrations and warnings name who acted, as decisions do

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 16:35:00

The person or system a key belonged to when it registered or revoked a near-relative, or
acknowledged or resolved a warning (a key's name can change, or the key be deleted after
it is revoked: the record keeps the name it had). Existing rows take their key's name.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "near_relatives": ("registered_by", "revoked_by"),
    "warnings": ("acknowledged_by", "resolved_by"),
}


def upgrade() -> None:
    keys = sa.table("api_keys", sa.column("id", sa.String()), sa.column("name", sa.String()))
    for table_name, actors in COLUMNS.items():
        with op.batch_alter_table(table_name) as batch:
            for actor in actors:
                batch.add_column(sa.Column(f"{actor}_name", sa.String(length=128), nullable=True))
        table = sa.table(
            table_name,
            *(sa.column(actor, sa.String()) for actor in actors),
            *(sa.column(f"{actor}_name", sa.String()) for actor in actors),
        )
        for actor in actors:
            op.execute(
                table.update()
                .where(table.c[actor].is_not(None))
                .values(
                    {
                        f"{actor}_name": sa.select(keys.c.name)
                        .where(keys.c.id == table.c[actor])
                        .scalar_subquery()
                    }
                )
            )


def downgrade() -> None:
    for table_name, actors in COLUMNS.items():
        with op.batch_alter_table(table_name) as batch:
            for actor in actors:
                batch.drop_column(f"{actor}_name")
