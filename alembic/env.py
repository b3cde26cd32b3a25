"""Alembic environment: runs on a connection handed over by `service.db.migrate`,
or opens its own from `HEDUI_DATABASE_URL` when called from the alembic CLI."""

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from service.config import Settings
from service.db import create_engine
from service.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = create_engine(Settings().database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_with_own_engine())
