"""the job queue of `hedui worker` on PostgreSQL (pgqueuer's tables)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 07:45:00

SQLite needs nothing: there the verification rows themselves are the queue.
"""

from collections.abc import Sequence

from sqlalchemy.util import await_only

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _execute_script(sql: str) -> None:
    """Run a multi-statement script on the migration's own asyncpg connection (and so in
    its transaction): SQLAlchemy's asyncpg dialect prepares one statement at a time."""
    driver_connection = op.get_bind().connection.driver_connection
    await_only(driver_connection.execute(sql))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

    _execute_script(QueryBuilderEnvironment().build_install_query(create_schema=False))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

    _execute_script(QueryBuilderEnvironment().build_uninstall_query())
