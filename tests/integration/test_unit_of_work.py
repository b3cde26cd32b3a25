"""A request's writes are committed before its answer is sent."""

from pathlib import Path

import httpx
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from service.app import create_app
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.config import Settings
from tests.factories import make_id_number, near_relative_body
from tests.integration.test_near_relatives import PATH


class _CommitFails(AsyncSession):
    async def commit(self) -> None:
        raise OperationalError("COMMIT", {}, ConnectionError("the database went away"))


async def test_a_write_that_fails_to_commit_is_never_answered_2xx(
    database_url: str,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """Were the commit to run after the response, the caller would hear 201 for nothing."""
    async with session_factory() as session:
        _, token = await create_api_key(session, role=Role.auditor, region="53")
        await session.commit()
    settings = Settings(database_url=database_url, sandbox="off", sandbox_data=tmp_path / "s.db")
    app = create_app(settings, run_migrations=False)
    relative = make_id_number("530102", "19600101")
    # No lifespan: its runner would resume other tests' verifications in this database.
    failing = async_sessionmaker(engine, class_=_CommitFails, expire_on_commit=False)

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = {"settings": settings, "engine": engine, "session_factory": failing}
        await app(scope, receive, send)

    transport = httpx.ASGITransport(served, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hedui.test") as client:
        response = await client.post(
            PATH, json=near_relative_body(relative), headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code >= 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert relative not in response.text
