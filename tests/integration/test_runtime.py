"""build_runtime(): one place that opens and closes what the API and the commands share."""

from pathlib import Path

import pytest
from sqlalchemy import text

from service.config import Settings
from service.db import SchemaNotCurrent, autovacuum_off, create_engine
from service.runtime import build_runtime


async def test_opens_on_a_current_schema_and_closes_what_it_opened(database_url: str) -> None:
    async with build_runtime(Settings(database_url=database_url)) as runtime:
        async with runtime.session_factory() as session:
            assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar() >= 0
        assert set(runtime.registry.names()) >= {"bank", "vehicles"}
        client = runtime.http_client
        assert not client.is_closed
    assert client.is_closed


async def test_the_settle_window_is_the_settings(database_url: str) -> None:
    async with build_runtime(Settings(database_url=database_url)) as runtime:
        assert runtime.workflow.settle_window_s == 0.1
    async with build_runtime(Settings(database_url=database_url, settle_window_s=0.25)) as runtime:
        assert runtime.workflow.settle_window_s == 0.25


async def test_refuses_an_unmigrated_database_unless_asked_to_migrate(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(SchemaNotCurrent, match="hedui db upgrade"):
        async with build_runtime(settings):
            pass
    async with build_runtime(settings, migrate_to="head"):
        pass
    async with build_runtime(settings):
        pass


async def test_autovacuum_off_is_read_from_the_server(database_url: str) -> None:
    """PostgreSQL's autovacuum as the server has it (`hedui serve` and `hedui worker` warn
    when it is off); SQLite has none, so never off."""
    engine = create_engine(database_url)
    try:
        found = await autovacuum_off(engine)
        if engine.dialect.name == "sqlite":
            expected = False
        else:
            async with engine.connect() as connection:
                setting = await connection.execute(
                    text("SELECT setting FROM pg_settings WHERE name = 'autovacuum'")
                )
                expected = setting.scalar_one() == "off"
    finally:
        await engine.dispose()
    assert found is expected
