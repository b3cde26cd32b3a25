"""audit_events: whom an event read, by the keyed blind index of their ID number

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 14:35:00

A person looked up (`person.search`) is named in an event's detail by their masked ID
number, which no search can find them by: the keyed blind index (as verifications' members
carry it) lets `POST /v1/audit/search` find who looked a person up. Outside the chain's
hashed fields: older events keep their links. Events before this revision have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.add_column(sa.Column("subject_blind", sa.String(64), nullable=True))
        batch_op.create_index("ix_audit_events_subject_blind", ["subject_blind"])


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch_op:
        batch_op.drop_index("ix_audit_events_subject_blind")
        batch_op.drop_column("subject_blind")
