"""build_runtime(): the process's shared resources, built and disposed of in one place.

The API's lifespan and every command that touches the database open the same runtime:
engine, session factory, write gate, outbound HTTP client, connector registry, fan-out and
policy catalog. Only `hedui serve` and `hedui db upgrade` migrate (`migrate_to`); every
other user refuses a database whose schema is not at this version's head, naming the
command that brings it there.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.registry import ConnectorRegistry, load_connectors
from service import db
from service.config import Settings
from service.http import create_http_client
from service.partners import build_configs
from service.policy.catalog import PolicyCatalog
from service.verification.fanout import FanOut


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    write_gate: db.WriteGate
    http_client: httpx.AsyncClient
    registry: ConnectorRegistry
    fanout: FanOut
    catalog: PolicyCatalog


@asynccontextmanager
async def build_runtime(
    settings: Settings,
    *,
    migrate_to: str | None = None,
    registry: ConnectorRegistry | None = None,
) -> AsyncIterator[Runtime]:
    """Open the runtime for `settings`; everything it opened is closed on the way out.

    With `migrate_to` (a revision, "head" for `hedui serve`), the schema is brought there
    first; without, a schema that is behind (or ahead) raises `SchemaNotCurrent` before
    anything else is built.
    """
    engine = db.create_engine(settings.database_url)
    try:
        if migrate_to is not None:
            await db.migrate(engine, migrate_to)
        else:
            await db.require_current_schema(engine)
        connectors = registry or load_connectors()
        configs = build_configs(connectors, settings)
        catalog = PolicyCatalog.load(local=settings.policy_dir)
        client = create_http_client(settings)
        try:
            yield Runtime(
                settings=settings,
                engine=engine,
                session_factory=db.create_session_factory(engine),
                write_gate=db.WriteGate(engine),
                http_client=client,
                registry=connectors,
                fanout=FanOut(connectors, configs, client),
                catalog=catalog,
            )
        finally:
            await client.aclose()
    finally:
        await engine.dispose()
