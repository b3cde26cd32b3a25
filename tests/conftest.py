"""Shared fixtures: one real database per dialect, one real server per database.

The same suite runs on SQLite and PostgreSQL: every test that takes `database_url` (or a
fixture built on it) runs once per dialect. PostgreSQL is found at HEDUI_TEST_POSTGRES_URL
(default: the local `test` database); when it is unreachable those runs are skipped, unless
HEDUI_TEST_REQUIRE_POSTGRES=1 (CI), which turns that into a failure.
"""

import asyncio
import contextlib
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import settings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connectors import http as connector_http
from service.app import create_app
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.config import Settings
from service.crypto.kek import read_key_file, write_key_file
from service.crypto.store import open_keyring
from service.db import create_engine, create_session_factory, migrate

# Property tests assert rules, not speed: a loaded machine must not fail them on a clock.
settings.register_profile("hedui", deadline=None)
settings.load_profile("hedui")

POSTGRES_URL = os.environ.get(
    "HEDUI_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("HEDUI_TEST_REQUIRE_POSTGRES") == "1"

# One key-encryption key for the whole run, as a deployment has: every service, command and
# fixture of the run (and the subprocesses they start) finds it through HEDUI_KEY_FILE.
KEY_FILE = Path(tempfile.mkdtemp(prefix="hedui-keys-")) / "hedui.key"
write_key_file(KEY_FILE)
os.environ["HEDUI_KEY_FILE"] = str(KEY_FILE)


CLIENT_TLS = httpx.create_ssl_context()
"""The TLS context of the suite's own clients, the one httpx would build, built once: a
client given none loads the CA bundle again (30-45 ms, hundreds of times a run)."""


def _postgres_reachable() -> bool:
    url = httpx.URL(POSTGRES_URL.replace("postgresql+asyncpg", "http", 1))
    try:
        with socket.create_connection((url.host, url.port or 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _no_retry_waits() -> None:
    connector_http.set_testing(True)


async def _create_postgres_database(
    template: str | None = None,
) -> tuple[str, Callable[[], Awaitable[None]]]:
    """An empty database, or a copy of the database named `template`."""
    import asyncpg

    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg", "postgresql", 1)
    name = f"hedui_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    copied = f' TEMPLATE "{template}"' if template else ""
    await admin.execute(f'CREATE DATABASE "{name}"{copied}')
    await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", drop


def _require_postgres() -> None:
    if not _postgres_reachable():
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but unreachable at {POSTGRES_URL}")
        pytest.skip("PostgreSQL is not reachable")


async def _fresh_database(
    dialect: str, directory: Path
) -> tuple[str, Callable[[], Awaitable[None]] | None]:
    if dialect == "sqlite":
        return f"sqlite+aiosqlite:///{directory / 'hedui.db'}", None
    _require_postgres()
    return await _create_postgres_database()


class MigratedTemplates:
    """One database per dialect, migrated once for the run: a test's own database starts
    as a copy of it (a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL),
    with the schema and data keys that migrating gives, in a fraction of the time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sqlite: Path | None = None
        self._postgres: tuple[str, Callable[[], Awaitable[None]]] | None = None
        self._spare: asyncio.Task[tuple[str, Callable[[], Awaitable[None]]]] | None = None
        """The next PostgreSQL copy, made while the test before runs: `CREATE DATABASE`
        mostly waits on the disk (0.4-0.6 s here), a wait the run need not take in turn."""
        self._dropping: set[asyncio.Task[None]] = set()

    async def copy(
        self, dialect: str, directory: Path
    ) -> tuple[str, Callable[[], Awaitable[None]] | None]:
        if dialect == "sqlite":
            if self._sqlite is None:
                self._sqlite = await self._migrated_sqlite()
            target = directory / "hedui.db"
            shutil.copyfile(self._sqlite, target)
            return f"sqlite+aiosqlite:///{target}", None
        _require_postgres()
        if self._postgres is None:
            url, drop = await _create_postgres_database()
            await _migrated(url)
            self._postgres = url.rsplit("/", 1)[1], drop
        template = self._postgres[0]
        spare, self._spare = self._spare, None
        made = None
        if spare is not None:
            with contextlib.suppress(Exception):  # made again below, its error seen there
                made = await spare
        if made is None:
            made = await _create_postgres_database(template=template)
        self._spare = asyncio.create_task(_create_postgres_database(template=template))
        url, drop = made

        async def drop_meanwhile() -> None:
            # Dropped while the next test runs; `close` waits for every drop.
            task = asyncio.create_task(drop())
            self._dropping.add(task)
            task.add_done_callback(self._dropping.discard)

        return url, drop_meanwhile

    async def _migrated_sqlite(self) -> Path:
        template = self.directory / "template.db"
        await _migrated(f"sqlite+aiosqlite:///{template}")
        # Everything into the database file itself, so that copying that file copies all.
        with closing(sqlite3.connect(template)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return template

    async def close(self) -> None:
        if self._spare is not None:
            with contextlib.suppress(Exception):
                _, drop = await self._spare
                await drop()
        await asyncio.gather(*self._dropping, return_exceptions=True)
        if self._postgres is not None:
            await self._postgres[1]()


async def _migrated(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def migrated_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[MigratedTemplates]:
    templates = MigratedTemplates(tmp_path_factory.mktemp("templates"))
    yield templates
    await templates.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A freshly migrated database of each dialect."""
    url, drop = await _fresh_database(request.param, tmp_path_factory.mktemp("db"))
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    yield url
    if drop is not None:
        await drop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def own_database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_templates: MigratedTemplates,
) -> AsyncIterator[str]:
    """A migrated database of each dialect for this test alone: no other process (the
    session's live service) runs its verifications."""
    url, drop = await migrated_templates.copy(request.param, tmp_path_factory.mktemp("own"))
    yield url
    if drop is not None:
        await drop()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def keyed_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that seal and open as the service does (the run's key file, the database's
    data keys)."""
    return create_session_factory(engine, await open_keyring(engine, read_key_file(KEY_FILE)))


@pytest.fixture(scope="session")
async def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return await keyed_session_factory(engine)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveService:
    """A running hedui (with its sandbox agencies) on a loopback port."""

    def __init__(self, base_url: str, settings: Settings, app: object) -> None:
        self.base_url = base_url
        self.settings = settings
        self.app = app


@asynccontextmanager
async def serving(app: Any, port: int | None = None, *, lifespan: str = "on") -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port; yield its base URL."""
    port = port or _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan=lifespan,
            # Bounded, as `hedui serve`'s: a call the sandbox holds open ("hang") would
            # otherwise keep the server up until its caller's budget ran out.
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    # Bounded, but by far more than a start takes on a busy machine (seconds): a test that
    # went on before the server listened would fail for the wrong reason.
    for _ in range(int(START_BOUND_S / 0.02)):
        if server.started:
            break
        if task.done():
            task.result()
            raise RuntimeError(f"the service on port {port} stopped while starting")
        await asyncio.sleep(0.02)
    else:
        server.should_exit = True
        raise RuntimeError(f"the service on port {port} did not start within {START_BOUND_S} s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, SHUTDOWN_BOUND_S)
        except TimeoutError:
            # Seen once in CI: a shutdown that had not ended after 9 minutes. Not hidden:
            # the run's output says so, past pytest's capture; the next test need not wait.
            print(
                f"\nthe service on port {port} did not shut down within {SHUTDOWN_BOUND_S} s",
                file=sys.__stderr__,
            )


SHUTDOWN_BOUND_S = 60
START_BOUND_S = 60


def service_settings(database_url: str, sandbox_data: Path, **overrides: Any) -> Settings:
    """Settings of a test service on a free port, with its sandbox agencies."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "port": _free_port(),
        "sandbox": "on",
        "sandbox_data": sandbox_data,
        # A busy machine is no reason for a source to time out: a test of timeouts gives
        # the source it hangs a short budget of its own.
        "connector_timeout_s": 15,
        "connector_refresh_s": 0.2,
        "log_level": "INFO",  # the privacy tests read real log lines
    }
    return Settings(**{**values, **overrides})


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[LiveService]:
    app = create_app(settings)
    async with serving(app, settings.port) as base_url:
        yield LiveService(base_url, settings, app)


@pytest.fixture(scope="session")
async def live_service(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveService]:
    sandbox_data = Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db"
    settings = service_settings(
        database_url,
        sandbox_data,
        # Many tests break partners on this shared server: its breakers must not trip and
        # turn a later test's call into "circuit open" (breakers are tested on their own).
        breaker_consecutive=1_000_000,
        breaker_window=1_000_000,
        breaker_min_calls=1_000_000,
        # Nor may one test's retries spend the next one's retry budget.
        retry_budget_min_retries=1_000_000,
    )
    async with running_service(settings) as service:
        yield service


@pytest.fixture(scope="module")
async def fresh_database_url(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_templates: MigratedTemplates,
) -> AsyncIterator[str]:
    """A database of its own (same dialect as `database_url`), for state that is shared
    by every process using a database, such as circuit breakers."""
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    url, drop = await migrated_templates.copy(dialect, tmp_path_factory.mktemp("db"))
    yield url
    if drop is not None:
        await drop()


@pytest.fixture
async def http(live_service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    """A plain client for the running service (no credentials)."""
    async with httpx.AsyncClient(
        base_url=live_service.base_url, timeout=30, verify=CLIENT_TLS
    ) as client:
        yield client


ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def api_client(
    live_service: LiveService, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[ClientFactory]:
    """`await api_client(role="caseworker", region="53")` → an authenticated client."""
    clients: list[httpx.AsyncClient] = []

    async def make(
        role: str = "caseworker", region: str = "53", name: str | None = None
    ) -> httpx.AsyncClient:
        async with session_factory() as session:
            _, token = await create_api_key(session, role=Role(role), region=region, name=name)
            await session.commit()
        client = httpx.AsyncClient(
            base_url=live_service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            verify=CLIENT_TLS,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


class ConfiguredProvider:
    """An OpenTelemetry provider as an SDK's would be: FastAPI's own telemetry, when on,
    exports through it. Any use fails the test."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.asked.append(name)
        raise AssertionError(f"the app asked its OpenTelemetry provider for {name}")


@pytest.fixture
def otel_providers(monkeypatch: pytest.MonkeyPatch) -> list[ConfiguredProvider]:
    """A tracer, a meter and a logger provider configured in this process (restored
    afterwards)."""
    from opentelemetry import _logs, metrics, trace

    providers = []
    for module, getter in (
        (trace, "get_tracer_provider"),
        (metrics, "get_meter_provider"),
        (_logs, "get_logger_provider"),
    ):
        provider = ConfiguredProvider()

        def get(provider: ConfiguredProvider = provider, getter: str = getter) -> Any:
            provider.asked.append(getter)  # looked up at all: the app checks for it
            return provider

        monkeypatch.setattr(module, getter, get)
        providers.append(provider)
    return providers


@pytest.fixture(autouse=True)
async def _reset_sandbox_faults(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Fault injection and the sandbox clock are global to the sandbox: every test starts and
    ends with no fault, in real time."""
    yield
    if "live_service" in request.fixturenames:
        live: LiveService = request.getfixturevalue("live_service")
        # Two calls (every source's fault, the clock), on the suite's one TLS context: after
        # every test that uses the shared service, thousands of times a run.
        async with httpx.AsyncClient(base_url=live.base_url, verify=CLIENT_TLS) as client:
            for reset in ("/sandbox/faults", "/sandbox/clock"):
                answer = await client.delete(reset)
                assert answer.status_code == 200, answer.text


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`postgres_only` tests run with the PostgreSQL `database_url` alone.

    The mark is only meaningful on a test that uses the `database_url` fixture (directly or
    through `engine`, `session_factory`, ...); on any other test it is a mistake.
    """
    for item in items:
        if item.get_closest_marker("postgres_only") is None:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is None or "database_url" not in callspec.params:
            raise pytest.UsageError(f"{item.nodeid}: postgres_only needs the database_url fixture")
        if callspec.params["database_url"] != "postgresql":
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL"))
