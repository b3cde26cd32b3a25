"""Routes are built at start-up, not by the first request (`service.routing.build_routes`).

FastAPI builds an included router's route state the first time a request is matched
against it; the first caller after a start used to wait for all of it (seconds on a busy
machine: a health check with a 5 s timeout failed). Whether a router has been built is
FastAPI's own bookkeeping (`_IncludedRouter`, private): if that changes, this test says so.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import _IncludedRouter
from starlette.routing import Mount

from service.app import create_app
from service.config import Settings
from service.routing import build_routes


def included(app: Any) -> Iterator[_IncludedRouter]:
    """Every included router of `app` and of the applications mounted in it."""
    for route in app.router.routes:
        if isinstance(route, _IncludedRouter):
            yield route
        elif isinstance(route, Mount) and isinstance(route.app, FastAPI):
            yield from included(route.app)


def unbuilt(app: FastAPI) -> list[str]:
    return [
        str(router.include_context)[:60]
        for router in included(app)
        if router._effective_candidates_version is None
    ]


def with_sandbox(tmp_path: Path) -> FastAPI:
    """hedui's app with the sandbox mounted, not started (nothing built yet)."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hedui.db'}",
        sandbox="on",
        sandbox_data=tmp_path / "sandbox.db",
    )
    return create_app(settings, run_migrations=False)


async def test_every_router_is_built_and_nothing_is_answered_to_anyone(tmp_path: Path) -> None:
    app = with_sandbox(tmp_path)
    routers = list(included(app))
    assert len(routers) > 10  # hedui's and the sandbox's
    assert unbuilt(app)  # nothing is built before a request

    await build_routes(app.router, ("", "/sandbox"))

    assert unbuilt(app) == []


async def test_without_the_sandbox_prefix_only_hedui_s_own_routers_are_built(
    tmp_path: Path,
) -> None:
    app = with_sandbox(tmp_path)

    await build_routes(app.router)

    sandbox = next(
        route.app
        for route in app.router.routes
        if isinstance(route, Mount) and isinstance(route.app, FastAPI)
    )
    assert unbuilt(app) == unbuilt(sandbox) != []
