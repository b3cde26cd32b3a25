"""Process-wide resources, built once in the app's lifespan and handed to handlers."""

from typing import TypedDict

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors.registry import ConnectorRegistry
from service.admission import Intake, RateLimiter
from service.auth.cache import PrincipalCache
from service.config import Settings
from service.connector.metrics import Metrics
from service.connector.monitor import HealthMonitor
from service.db import WriteGate
from service.jobs.completion import Completions
from service.jobs.depth import QueueDepth
from service.jobs.queue import RunQueue
from service.policy.catalog import PolicyCatalog


class State(TypedDict):
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    http_client: httpx.AsyncClient
    registry: ConnectorRegistry
    catalog: PolicyCatalog
    queue: RunQueue
    queue_depth: QueueDepth
    completions: Completions
    write_gate: WriteGate
    health: HealthMonitor
    metrics: Metrics
    rate_limiter: RateLimiter | None
    intake: Intake
    principals: PrincipalCache
