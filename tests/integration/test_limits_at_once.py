"""A limit that is a count followed by an insert holds when many ask at once: each
asker's count and insert are one step, on PostgreSQL (whose transactions would otherwise
each count what none of the others has committed yet) as on SQLite."""

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from schemas.webhook import WebhookCreate
from service.auth.principal import Principal, Role
from service.auth.service import create_api_key
from service.config import Settings
from service.connector.registration_repository import RegistrationRepository
from service.connector.registration_service import registration as registration_service
from service.errors import Conflict
from service.runtime import Runtime, build_runtime
from service.webhook.repository import WebhookRepository
from service.webhook.service import MAX_ACTIVE_PER_REGION
from service.webhook.service import webhook as webhook_service
from tests.connectors.declarative.specs import example

INTEGRATOR = Principal(key_id="k-int", name="integrator", role=Role.integrator, region_prefix="")
ASKERS = 12


async def each_in_its_own_transaction(
    runtime: Runtime, ask: Callable[[AsyncSession, int], Awaitable[object]]
) -> Counter[str]:
    """`ASKERS` transactions at once, each committing what `ask` did or refused: how many
    of each."""

    async def one(number: int) -> str:
        async with runtime.session_factory() as session:
            try:
                await ask(session, number)
            except Conflict:
                await session.rollback()
                return "refused"
            await session.commit()
            return "done"

    return Counter(await asyncio.gather(*(one(number) for number in range(ASKERS))))


async def test_connectors_registered_at_once_stop_at_the_limit(own_database_url: str) -> None:
    settings = Settings(database_url=own_database_url, max_declarative_connectors=3)
    async with build_runtime(settings) as runtime:

        async def register(session: AsyncSession, number: int) -> None:
            spec = {**example("tax", "http://127.0.0.1:9/sandbox"), "name": f"tax_{number}"}
            await registration_service.register(
                session, INTEGRATOR, spec, runtime.registry, settings
            )

        outcomes = await each_in_its_own_transaction(runtime, register)
        async with runtime.session_factory() as session:
            registered = await RegistrationRepository.from_session(session).count()

    assert outcomes == {"done": 3, "refused": ASKERS - 3}
    assert registered == 3


async def test_webhooks_added_at_once_stop_at_the_regions_limit(own_database_url: str) -> None:
    settings = Settings(database_url=own_database_url)
    async with build_runtime(settings) as runtime:
        async with runtime.session_factory() as session:
            key, _ = await create_api_key(session, role=Role.integrator, region="12")
            integrator = Principal(key.id, key.name, Role.integrator, "12")
            for number in range(MAX_ACTIVE_PER_REGION - 2):
                await webhook_service.create(session, integrator, _hook(number), ["127.0.0.1"])
            await session.commit()

        async def add(session: AsyncSession, number: int) -> None:
            await webhook_service.create(session, integrator, _hook(100 + number), ["127.0.0.1"])

        outcomes = await each_in_its_own_transaction(runtime, add)
        async with runtime.session_factory() as session:
            active = await WebhookRepository.from_session(session).active_count("12")

    assert outcomes == {"done": 2, "refused": ASKERS - 2}
    assert active == MAX_ACTIVE_PER_REGION


def _hook(number: int) -> WebhookCreate:
    return WebhookCreate(
        url=f"http://127.0.0.1:9/events/{number}",
        events=["verification.completed"],
        secret="0123456789abcdef0",
    )
