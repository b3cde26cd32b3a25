"""build_runtime(): one place that opens and closes what the API and the commands share."""

from pathlib import Path

import pytest
from sqlalchemy import text

from service.config import Settings
from service.db import SchemaNotCurrent
from service.runtime import build_runtime


async def test_opens_on_a_current_schema_and_closes_what_it_opened(database_url: str) -> None:
    async with build_runtime(Settings(database_url=database_url)) as runtime:
        async with runtime.session_factory() as session:
            assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar() >= 0
        assert set(runtime.registry.names()) >= {"bank", "vehicles"}
        client = runtime.http_client
        assert not client.is_closed
    assert client.is_closed


async def test_refuses_an_unmigrated_database_unless_asked_to_migrate(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(SchemaNotCurrent, match="hedui db upgrade"):
        async with build_runtime(settings):
            pass
    async with build_runtime(settings, migrate_to="head"):
        pass
    async with build_runtime(settings):
        pass
