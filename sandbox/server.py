"""Run the sandbox agencies as their own process (`hedui sandbox`)."""

import os

import uvicorn

from sandbox.app import create_sandbox_app

DEFAULT_DATA_PATH = "hedui-sandbox.db"


def run(
    host: str = "127.0.0.1",
    port: int = 8100,
    data_path: str | None = None,
    *,
    synthetic: bool = True,
) -> None:
    """Serve the agencies until interrupted; seeded people live in `data_path`.

    Without a path, `HEDUI_SANDBOX_DATA` or `./hedui-sandbox.db` is used, so seeded
    people survive a restart as documented. `synthetic=False`: people nobody seeded have
    no records instead of synthetic ones.
    """
    path = data_path or os.environ.get("HEDUI_SANDBOX_DATA") or DEFAULT_DATA_PATH
    uvicorn.run(
        create_sandbox_app(path, synthetic=synthetic),
        host=host,
        port=port,
        # Benchmarks send thousands of calls a second: an access line each would dominate.
        access_log=False,
        # Calls held by the `hang` fault must not hold up shutdown for an hour.
        timeout_graceful_shutdown=2,
    )
