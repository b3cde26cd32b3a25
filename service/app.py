"""create_app(): the lifespan opens the runtime (service/runtime.py) and starts its runs."""

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from connectors.registry import ConnectorRegistry
from service import __version__, heap
from service.admission import Intake, RateLimiter, ShedFirst
from service.audit.endpoints import router as audit_router
from service.audit.recorder import audit_trail
from service.auth.cache import PrincipalCache
from service.auth.endpoints import router as apikey_router
from service.auth.middleware import AuthenticateFirst
from service.batch.endpoints import router as batch_router
from service.config import Settings, get_settings
from service.connector.dashboard import router as dashboard_router
from service.connector.endpoints import metrics_router
from service.connector.endpoints import router as connector_router
from service.connector.registration_endpoints import router as connector_registration_router
from service.connector.wiring import check_connectors_once_listening
from service.error_handlers import install_error_handlers
from service.errors import PROBLEM_BASE, PROBLEM_TYPES, NotFound
from service.guard import BodyLimit, RequestGuard
from service.head import HeadAsGet
from service.logging import configure_logging
from service.near_relative.endpoints import router as near_relative_router
from service.openapi import install_openapi
from service.person.endpoints import router as person_router
from service.problem_docs import problems
from service.recipient.endpoints import router as recipient_router
from service.report.endpoints import router as report_router
from service.request_id import RequestId
from service.routing import build_routes
from service.runtime import build_runtime
from service.simulation.endpoints import router as simulation_router
from service.state import State
from service.verification.endpoints import router as verification_router
from service.warning.endpoints import router as warning_router
from service.webhook.endpoints import router as webhook_router

DESCRIPTION = """
Household economic-status verification (核对) for social-assistance programs
(低保 dibao, 特困 tekun, 临时救助 linshi).

A case-management system submits a household with its signed authorization; hedui asks
every partner agency (vehicles, pensions, housing fund, real estate, public payroll, banks)
concurrently and returns a scored, explainable report for the approval step.

Every `/v1` call needs `Authorization: Bearer <token>` (`hedui apikey create`). Errors are
RFC 9457 `application/problem+json`. ID numbers never appear unmasked in any response.
"""


HEALTHY = {"status": "ok", "database": "up"}
UNHEALTHY = {"status": "unavailable", "database": "down"}

BATCH_UPLOAD_PATHS = re.compile(r"/v1/batches(/[^/]+/households)?")

ROUTERS = (
    verification_router,
    batch_router,
    report_router,
    recipient_router,
    warning_router,
    webhook_router,
    near_relative_router,
    person_router,
    simulation_router,
    connector_registration_router,  # before `connector_router`: `/schema` is not a name
    connector_router,
    dashboard_router,
    metrics_router,
    audit_router,
    apikey_router,
)


def create_app(
    settings: Settings | None = None,
    *,
    registry: ConnectorRegistry | None = None,
    run_migrations: bool = True,
    settle_heap: bool = False,
) -> FastAPI:
    """`settle_heap`: the app is its process's whole life (`hedui serve`): once started,
    tune the garbage collector for a long-running server (service/heap.py)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    log = structlog.get_logger(__name__)
    if settings.sandbox_enabled:
        log.warning(
            "sandbox_mounted",
            hint="the fake partner agencies are served under /sandbox without authentication: "
            "anyone who can reach this port can plant partner data (POST /sandbox/people) and "
            "inject faults. For trials and tests only; HEDUI_SANDBOX=off to remove them",
            host=settings.host,
        )
    elif not settings.partner_base_url:
        log.warning(
            "partners_unset",
            hint="the sandbox is not served (HEDUI_SANDBOX=auto serves it only on a loopback "
            "address with SQLite; =on forces it) and HEDUI_PARTNER_BASE_URL is not set: every "
            "source will fail until the partner agencies' URL is configured",
            sandbox=settings.sandbox,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with build_runtime(
            settings,
            migrate_to="head" if run_migrations else None,
            registry=registry,
            serving=True,
        ) as runtime:
            state: State = {
                "settings": settings,
                "engine": runtime.engine,
                "session_factory": runtime.session_factory,
                "http_client": runtime.http_client,
                "registry": runtime.registry,
                "catalog": runtime.catalog,
                "queue": runtime.queue,
                "queue_depth": runtime.queue_depth,
                "completions": runtime.completions,
                "write_gate": runtime.write_gate,
                "health": runtime.health,
                "metrics": runtime.metrics,
                "rate_limiter": RateLimiter(settings.rate_limit_per_minute)
                if settings.rate_limit_per_minute
                else None,
                "intake": Intake(),
                "principals": (
                    principals := PrincipalCache(
                        runtime.session_factory,
                        ttl_s=settings.principal_cache_s,
                        write_gate=runtime.write_gate,
                    )
                ),
            }
            checks: asyncio.Task[None] | None = None
            try:
                # With probes on, the start-up check is the health monitor's first round.
                probing = settings.health_probe_interval_s > 0
                await runtime.start_runs(
                    here=settings.run_mode == "inline", first_probes_here=not probing
                )
                # Before the port opens: the first caller is not made to wait for it.
                await build_routes(
                    app.router, ("", "/sandbox") if settings.sandbox_enabled else ("",)
                )
                # In the background: a partner that is down must not hold up start-up.
                # After `start_runs`, which has read the pauses: a paused one is not checked.
                checks = asyncio.create_task(
                    check_connectors_once_listening(
                        settings,
                        runtime.registry,
                        runtime.fetcher.configs,
                        runtime.http_client,
                        runtime.fetcher.throttle,
                        runtime.health.paused,
                        probe_round=partial(
                            runtime.health.probe_round,
                            runtime.registry,
                            runtime.fetcher.configs,
                            runtime.http_client,
                        )
                        if probing
                        else None,
                    )
                )
                if settle_heap:
                    heap.settle(settings.gc_threshold)
                structlog.get_logger(__name__).info(
                    "hedui_ready",
                    database=runtime.engine.url.render_as_string(hide_password=True),
                    sandbox="mounted" if settings.sandbox_enabled else "off",
                    partners=settings.resolved_partner_base_url(),
                    connectors=len(runtime.registry.names()),
                    run_mode=settings.run_mode,
                    docs=f"{settings.local_service_url()}/docs",
                    first_key="hedui apikey create --role caseworker --region 53",
                )
                yield state
            finally:
                if checks is not None:
                    checks.cancel()
                    with suppress(asyncio.CancelledError):
                        await checks
                await principals.aclose()

    # Docs assets are served by hedui itself: agency intranets often cannot reach a CDN.
    app = FastAPIOffline(
        title="hedui",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry spans, metrics and logs stay off: hedui says what it
        # records (structlog, Prometheus, the audit trail) and exports nothing else about a
        # request, and the check for a configured provider cost every request 10 µs.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # A path with a trailing slash is not found (404, problem+json), not redirected: the
        # redirect named whatever Host the caller sent, an open redirect behind a cache.
        redirect_slashes=False,
        # Every route passes the audit trail; `service/audit/actions.py` says what each records.
        dependencies=[Depends(audit_trail, scope="function")],
        openapi_tags=[
            {"name": "verifications", "description": "Submit and follow household verifications"},
            {
                "name": "batches",
                "description": "Many households at once (re-checks): upload, progress, cancel",
            },
            {"name": "reports", "description": "Scored reports and the approval decision"},
            {
                "name": "near-relatives",
                "description": "Near relatives of staff members (近亲属备案), flagged in reports",
            },
            {"name": "policy", "description": "What-if simulation of policy figures"},
            {
                "name": "connectors",
                "description": "Partner connectors: health, circuit breakers, pause and resume",
            },
            {"name": "health", "description": "Liveness for load balancers, Prometheus metrics"},
            {"name": "audit", "description": "The tamper-evident audit trail, for auditors"},
            {"name": "apikeys", "description": "API keys: list and revoke them (admin)"},
        ],
    )
    install_error_handlers(app)
    # Batches are read as streams, a chunk at a time: their bound is their own.
    larger = (BodyLimit(BATCH_UPLOAD_PATHS, settings.max_batch_bytes, "HEDUI_MAX_BATCH_BYTES"),)
    # Added last is outermost: sizes and NUL characters first, then who is calling, and only
    # then does anything read the body.
    app.add_middleware(AuthenticateFirst)
    # Before the caller is looked up: an overloaded process refuses at the door.
    app.add_middleware(ShedFirst)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        larger=larger,
        body_timeout_s=settings.body_timeout_s,
        body_min_rate=settings.body_min_rate,
    )
    app.add_middleware(RequestId)
    app.add_middleware(HeadAsGet)
    for router in ROUTERS:
        app.include_router(router)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Service and database are up",
        responses={
            200: {"content": {"application/json": {"example": HEALTHY}}},
            503: {
                "description": "The database is down (a load balancer takes this process out)",
                "content": {"application/json": {"example": UNHEALTHY}},
            },
        },
    )
    async def healthz(request: Request) -> JSONResponse:
        try:
            async with request.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any database failure means "not ready", whatever its type
            return JSONResponse(UNHEALTHY, status_code=503)
        return JSONResponse(HEALTHY)

    @app.get(
        "/problems/{slug}",
        tags=["health"],
        summary="What a problem type means",
        responses={
            200: {
                "content": {
                    "application/json": {
                        "example": {
                            "type": PROBLEM_BASE + "decision-exists",
                            "description": PROBLEM_TYPES["decision-exists"],
                        }
                    }
                }
            },
            **problems(NotFound("No such problem type")),
        },
    )
    async def problem_type(slug: str) -> JSONResponse:
        if slug not in PROBLEM_TYPES:
            raise NotFound("No such problem type")
        return JSONResponse({"type": PROBLEM_BASE + slug, "description": PROBLEM_TYPES[slug]})

    if settings.sandbox_enabled:
        from sandbox.app import create_sandbox_app

        app.mount(
            "/sandbox",
            create_sandbox_app(settings.sandbox_data, synthetic=settings.sandbox_synthetic),
        )
    install_openapi(app, settings, larger=larger)
    return app


def create_migrated_app() -> FastAPI:
    """The app of one of several API processes (`hedui serve --workers N`): settings from
    the environment, migrations already applied by the command that started them."""
    return create_app(run_migrations=False, settle_heap=True)
