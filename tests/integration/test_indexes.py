"""Indexes that a hot statement must never be planned through."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def test_no_index_on_source_status_but_the_collectors_partial_one(
    engine: AsyncEngine,
) -> None:
    """Settling a source filters on `status = 'pending'`; an index on the status of every
    source tempted the planner, with stale statistics (a batch filling the table), to AND
    in all the pending entries: 25 ms per settle at 600,000 rows. Only the collectors'
    index reads the status, and it holds awaiting sources alone."""
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            rows = await connection.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'source_results'"
                )
            )
        else:
            rows = await connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'index' AND tbl_name = 'source_results' AND sql IS NOT NULL"
                )
            )
        definitions: dict[str, str] = {str(row[0]): str(row[1]) for row in rows}
    on_status = {name: sql for name, sql in definitions.items() if "status" in sql.lower()}
    assert set(on_status) == {"ix_source_results_awaiting_collect_at"}, definitions
    collectors = on_status["ix_source_results_awaiting_collect_at"]
    assert "WHERE" in collectors.upper()
    assert "'awaiting'" in collectors
