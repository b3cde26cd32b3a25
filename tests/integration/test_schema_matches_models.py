"""The schema the migrations build is the one the models describe, on each database.

A model changed without a migration (a new column, a changed type, an index, a constraint)
would work in the tests of whatever builds its tables from the models, and fail on the
first database that was migrated. alembic's own comparison, as `alembic revision
--autogenerate` runs it, finds nothing to do after `hedui db upgrade` but what is listed
here on purpose.
"""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.models import Base

NOT_MODELLED = ("pgqueuer", "connector_throttle_")
"""Tables the migrations make for what is not an ORM model: the job queue's (pgqueuer's own
schema) and the shared partner throttle's, both PostgreSQL's alone."""

SQLITE_AS_MIGRATED = {
    # SQLite does not enforce a VARCHAR's length; widening the column would rebuild a table
    # other tables refer to (migration 0017).
    ("modify_type", "api_keys", "region_prefix"),
    ("modify_type", "webhooks", "region_prefix"),
    # Columns sealed by migration 0022 were added to tables with rows; SQLite cannot make a
    # column NOT NULL without rebuilding its table. Every row written since has them.
    ("modify_nullable", "verification_members", "declared_monthly_income_sealed"),
    ("modify_nullable", "warnings", "before_sealed"),
    ("modify_nullable", "warnings", "after_sealed"),
    ("modify_nullable", "webhooks", "secret_sealed"),
}
"""Where a migrated SQLite database differs from the models, knowingly."""


def _difference(connection: Connection, metadata: MetaData = Base.metadata) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _named(change: Any) -> tuple[str, ...]:
    """('add_column', table, column), ('remove_table', table), ...: what alembic would do."""
    if isinstance(change, list):  # column changes come as a list of one
        (change,) = change
    operation = change[0]
    if operation in ("modify_type", "modify_nullable", "modify_default", "modify_comment"):
        return (operation, change[2], change[3])
    if operation in ("add_column", "remove_column"):
        return (operation, change[2], change[3].name)
    if operation in ("add_table", "remove_table"):
        return (operation, change[1].name)
    if operation in ("add_index", "remove_index"):
        return (operation, change[1].table.name, str(change[1].name))
    return (operation, repr(change[1:])[:200])


def _modelled(name: tuple[str, ...]) -> bool:
    return not name[1].startswith(NOT_MODELLED)


async def test_migrations_build_what_the_models_describe(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        difference = await connection.run_sync(_difference)
    found = {name for name in map(_named, difference) if _modelled(name)}
    expected = SQLITE_AS_MIGRATED if engine.dialect.name == "sqlite" else set()
    assert found == expected


async def test_the_comparison_sees_a_model_without_its_migration(engine: AsyncEngine) -> None:
    """The test above can fail: a column only the models know is reported."""
    models = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(models)
    models.tables["verifications"].append_column(Column("not_migrated", Integer))
    async with engine.connect() as connection:
        difference = await connection.run_sync(_difference, models)
    assert ("add_column", "verifications", "not_migrated") in set(map(_named, difference))
