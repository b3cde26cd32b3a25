"""`/v1/connectors`: every connector with its health; pause and resume (operators)."""

from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas import connector as wire
from service.audit.service import Actor
from service.connector.metrics import Metrics
from service.connector.service import ConnectorNotFound
from service.connector.service import connector as connector_service
from service.db import is_database_unavailable
from service.deps import (
    ConnectorReaderDep,
    HealthDep,
    PartnerSwitchDep,
    RegistryDep,
    SessionDep,
    SettingsDep,
)
from service.errors import Conflict
from service.problem_docs import problems
from service.routing import JSONRoute

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/connectors", tags=["connectors"], route_class=JSONRoute)
metrics_router = APIRouter(tags=["health"], route_class=JSONRoute)


@router.get(
    "",
    response_model=list[wire.ConnectorSummary],
    summary="Every connector with its health status",
)
async def list_connectors(
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    settings: SettingsDep,
    _: ConnectorReaderDep,
) -> list[wire.ConnectorSummary]:
    """`health` is `unknown`, `operational`, `degraded` or `down` (see `/health` for why)."""
    return await connector_service.summaries(session, registry, health, settings)


@router.get(
    "/{name}/health",
    response_model=wire.ConnectorHealth,
    responses=problems(ConnectorNotFound()),
    summary="A connector's health model: success rate, latency, breaker, last error",
)
async def connector_health(
    name: str,
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    settings: SettingsDep,
    _: ConnectorReaderDep,
) -> wire.ConnectorHealth:
    """Numbers cover the last `window_s` seconds (`HEDUI_HEALTH_WINDOW_S`), every process
    together, from `window_from`: later than `window_s` ago when the breaker closed since
    (`window_restarted`). Partner-attributable failures only lower the success rate."""
    return await connector_service.health(session, registry, health, settings, name)


@router.get(
    "/{name}/history",
    response_model=wire.ConnectorHistory,
    responses=problems(ConnectorNotFound()),
    summary="Calls, error rate and p95 latency per time bucket over the last hour and day",
)
async def connector_history(
    name: str,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    _: ConnectorReaderDep,
) -> wire.ConnectorHistory:
    return await connector_service.history(session, registry, settings, name)


@router.get(
    "/{name}/events",
    response_model=wire.ConnectorEventPage,
    responses=problems(ConnectorNotFound()),
    summary="Pauses, resumptions (who and why) and breaker transitions, newest first",
)
async def connector_events(
    name: str,
    session: SessionDep,
    registry: RegistryDep,
    _: ConnectorReaderDep,
    where: Annotated[wire.ConnectorEventFilter, Query()],
) -> wire.ConnectorEventPage:
    """Kept as long as the database is: who paused a partner and why, years on. A page at
    a time (`limit`, default 50), `next_cursor` for the older ones; `action` picks one
    kind."""
    return await connector_service.events(session, registry, name, where)


@router.post(
    "/{name}/pause",
    response_model=wire.ConnectorSummary,
    responses=problems(
        ConnectorNotFound(),
        Conflict("bank is already paused (王芳: partner maintenance 02:00-04:00)"),
    ),
    summary='Stop calling a partner: its sources become `error`, "paused by operator"',
)
async def pause_connector(
    name: str,
    body: wire.PauseRequest,
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    principal: PartnerSwitchDep,
) -> wire.ConnectorSummary:
    """Every process stops calling it within `HEDUI_HEALTH_SYNC_S`; verifications asking it
    meanwhile are incomplete and `review`, never `eligible`. 409 when already paused."""
    return await connector_service.pause(
        session, registry, health, Actor.of(principal), name, body.reason
    )


@router.post(
    "/{name}/resume",
    response_model=wire.ConnectorSummary,
    responses=problems(ConnectorNotFound(), Conflict("bank is not paused")),
    summary="Call a paused partner again",
)
async def resume_connector(
    name: str,
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    principal: PartnerSwitchDep,
    body: wire.ResumeRequest | None = None,
) -> wire.ConnectorSummary:
    reason = body.reason if body is not None else ""
    return await connector_service.resume(
        session, registry, health, Actor.of(principal), name, reason
    )


@metrics_router.get(
    "/metrics", summary="Prometheus metrics of this process", response_class=PlainTextResponse
)
async def metrics(
    request: Request,
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    settings: SettingsDep,
) -> Response:
    """Per-connector status (as on the dashboard), calls by outcome, latency, retries,
    breaker state, in-flight runs, queue depth and verification outcomes. Labels hold
    connector names and outcome words only."""
    await request.state.queue_depth.read()  # at most one count a second, shared
    metrics: Metrics = request.state.metrics
    try:
        statuses = await connector_service.statuses(session, registry, health, settings)
    except Exception as error:
        # Scraped most of all while something is wrong: this process's own figures are
        # served, the statuses keep their last values, and the outage shows.
        if not is_database_unavailable(error):
            raise
        log.warning("metrics_database_unavailable", error_type=type(error).__name__)
        await session.rollback()  # the request's unit of work ends without its commit
        metrics.database_up.set(0)
    else:
        metrics.database_up.set(1)
        for name, status in statuses.items():
            metrics.show(name, status, health.breakers[name].state, health.paused(name))
    # A connector disabled since (its card is gone from the dashboard) has no status,
    # breaker or pause any more: its gauges go, whether or not the database answered.
    metrics.keep_only(registry.names())
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
