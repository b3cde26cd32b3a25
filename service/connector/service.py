"""Connectors as operators see them: list, health model, history, pause and resume."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Connector, ConnectorConfig
from connectors.declarative import ConnectorSpec
from connectors.registry import ConnectorRegistry
from schemas import connector as wire
from schemas.connector import BreakerState, CallOutcome, HealthStatus
from service.audit.service import Actor
from service.config import Settings
from service.connector.monitor import HealthMonitor, pause_of
from service.connector.registration_repository import RegistrationRepository
from service.connector.repository import ConnectorRepository, to_bucket
from service.connector.stats import PARTNER_FAILURES, Bucket, percentile
from service.connector.status import Signals, Thresholds, assess
from service.connector.unloadable import UnloadableConnector
from service.connector.wiring import build_configs
from service.errors import Conflict, NotFound
from service.models import ConnectorBucket, ConnectorState, StoredConnector, StoredConnectorVersion
from service.pagination import decode_cursor, listing, next_cursor

log = structlog.get_logger(__name__)

RECENT_ERRORS = 10
HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
DAY_STEP = timedelta(minutes=15)


class ConnectorNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No connector is registered under this name")


class ConnectorService:
    async def summaries(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        settings: Settings,
        now: datetime | None = None,
    ) -> list[wire.ConnectorSummary]:
        statuses = await self.statuses(session, registry, monitor, settings, now)
        stored = {
            row.name: row
            for row in await RegistrationRepository.from_session(session).all_connectors()
        }
        summaries = []
        for name in registry.names():
            if name not in statuses:
                continue  # registered while the statuses were read: listed next time
            connector = registry.get(name)
            status = statuses[name]
            record = stored.pop(name, None)
            summaries.append(
                wire.ConnectorSummary(
                    name=name,
                    title=connector.title,
                    version=connector.version,
                    origin=registry.origin(name),
                    # The table is the truth; this process may not have polled it yet.
                    enabled=record.enabled if record is not None else True,
                    kinds=list(_kinds(connector)),
                    health=status,
                    breaker=_breaker(monitor, name),
                    paused=monitor.pauses.get(name),
                )
            )
        # Registered over the API but not in force here (not yet enabled, or disabled, or
        # enabled since and this process has not polled yet). A pause it kept from when it
        # was in force shows: it holds again the moment it is enabled.
        repository = ConnectorRepository.from_session(session)
        kept = await repository.states(list(stored)) if stored else {}
        read_at = datetime.now(UTC)
        # Each at the version it would be asked at (the one last in force, else the
        # latest), with that version's own title and kind: every such version in one read.
        shown = {idle.name: idle.active_version or idle.latest_version for idle in stored.values()}
        specs = await RegistrationRepository.from_session(session).versions_of(list(shown.items()))
        for idle in stored.values():
            version = specs.get((idle.name, shown[idle.name]))
            title, kinds = _title_and_kinds(version, idle.title)
            summaries.append(
                wire.ConnectorSummary(
                    name=idle.name,
                    title=title,
                    version=str(shown[idle.name]),
                    origin="declarative",
                    enabled=idle.enabled,
                    kinds=kinds,
                    health=HealthStatus.unknown,
                    breaker=BreakerState.closed,
                    paused=pause_of(kept[idle.name], read_at) if idle.name in kept else None,
                )
            )
        return summaries

    async def statuses(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        settings: Settings,
        now: datetime | None = None,
    ) -> dict[str, HealthStatus]:
        """Every connector's status now (every process's calls, the shared breaker)."""
        assessed = await self.assessments(session, registry, monitor, settings, now)
        return {name: status for name, (status, _) in assessed.items()}

    async def assessments(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        settings: Settings,
        now: datetime | None = None,
    ) -> dict[str, tuple[HealthStatus, str]]:
        """`statuses`, each with why it is what it is (in a few words), from one read."""
        now = now or datetime.now(UTC)
        repository = ConnectorRepository.from_session(session)
        # One list of names throughout: the registry may gain a declarative connector
        # while this awaits the database.
        names = registry.names()
        unloadable = {
            name: connector
            for name in names
            if isinstance(connector := registry.get(name), UnloadableConnector)
        }
        states = await repository.states(names)
        window, _ = await _windows(repository, monitor, None, now, settings)
        assessed = {}
        for name in names:
            monitor.track(name)  # a declarative connector nothing has asked yet
            assessed[name] = _assess(name, window[name], states.get(name), monitor, settings)
            if name in unloadable:
                # Its spec no longer loads: never asked. Said as `health` says it.
                assessed[name] = (HealthStatus.down, unloadable[name].detail)
        return assessed

    async def detail(
        self, session: AsyncSession, registry: ConnectorRegistry, settings: Settings, name: str
    ) -> wire.CodeConnector:
        """A built-in or plugin connector with the config this process gives it, masked,
        and an operator's pause of it."""
        connector = registry.get(name)
        config = build_configs(registry, settings)[name]
        state = await ConnectorRepository.from_session(session).state(name)
        return wire.CodeConnector(
            name=name,
            title=connector.title,
            version=connector.version,
            origin=registry.origin(name),
            kinds=list(_kinds(connector)),
            package=registry.package(name),
            config=masked_config(config),
            config_schema=type(config).model_json_schema(),
            paused=pause_of(state, datetime.now(UTC)) if state is not None else None,
        )

    async def health(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        settings: Settings,
        name: str,
        now: datetime | None = None,
    ) -> wire.ConnectorHealth:
        connector = await _held(session, registry, name)
        now = now or datetime.now(UTC)
        repository = ConnectorRepository.from_session(session)
        state = await repository.state(name)
        windows, closed = await _windows(repository, monitor, name, now, settings)
        window = windows[name]
        # Where the counts start: the window's length ago, or later, when the breaker
        # closed since (the outage's failures are history from then on).
        window_from = now - timedelta(seconds=settings.health_window_s)
        if name in closed and closed[name] > window_from:
            window_from = closed[name]
        if isinstance(connector, StoredConnector):
            # Registered over the API, not in force: nothing calls it, so nothing to assess
            # (what it did while it was in force is still counted above and below).
            status, reason = HealthStatus.unknown, _IDLE_REASON[connector.enabled]
            breaker_state, breaker_until = BreakerState.closed, None
        else:
            monitor.track(name)
            status, reason = _assess(name, window, state, monitor, settings)
            if isinstance(connector, UnloadableConnector):
                status, reason = HealthStatus.down, connector.detail
            breaker = monitor.breakers[name]
            breaker_state = breaker.state
            breaker_until = (
                datetime.fromtimestamp(breaker.open_until, UTC)
                if breaker.state is BreakerState.open and breaker.open_until is not None
                else None
            )
        errors = await repository.events(name, actions=_ERROR_ACTIONS, limit=RECENT_ERRORS)
        recent = [
            wire.RecentError(
                at=event.at, outcome=CallOutcome(event.action.split(":", 1)[1]), detail=event.reason
            )
            for event in errors
        ]
        probe = None
        if state is not None and state.last_probe_at is not None:
            probe = wire.Probe(
                at=state.last_probe_at,
                ok=bool(state.last_probe_ok),
                latency_ms=state.last_probe_latency_ms,
                detail=state.last_probe_detail,
            )
        return wire.ConnectorHealth(
            name=name,
            status=status,
            reason=reason,
            window_s=settings.health_window_s,
            window_from=window_from,
            window_restarted=name in closed and closed[name] == window_from,
            calls=window.calls,
            failures=window.failures,
            refused=window.refused,
            success_rate=_rate(window),
            latency=wire.LatencySummary(
                p50_ms=percentile(window.latency, 0.5),
                p95_ms=percentile(window.latency, 0.95),
                p99_ms=percentile(window.latency, 0.99),
            ),
            slo_p95_ms=settings.slo_ms(name),
            breaker=breaker_state,
            breaker_until=breaker_until,
            paused=monitor.pauses.get(name),
            last_success_at=state.last_success_at if state else None,
            last_error=recent[0] if recent else None,
            last_probe=probe,
            recent_errors=recent,
        )

    async def history(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        settings: Settings,
        name: str,
        now: datetime | None = None,
    ) -> wire.ConnectorHistory:
        """Per-bucket series over the last hour, and per quarter hour over the last day."""
        await _idle(session, registry, name)
        now = now or datetime.now(UTC)
        rows = await ConnectorRepository.from_session(session).buckets(name, now - DAY)
        width = timedelta(seconds=settings.health_bucket_s)
        return wire.ConnectorHistory(
            name=name,
            bucket_s=settings.health_bucket_s,
            hour=_series(rows, now - HOUR, now, width),
            day=_series(rows, now - DAY, now, max(width, DAY_STEP)),
        )

    async def pause(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        actor: Actor,
        name: str,
        reason: str,
    ) -> wire.ConnectorSummary:
        return await self._set_paused(session, registry, monitor, actor, name, reason, paused=True)

    async def resume(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        actor: Actor,
        name: str,
        reason: str,
    ) -> wire.ConnectorSummary:
        return await self._set_paused(session, registry, monitor, actor, name, reason, paused=False)

    async def _set_paused(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        actor: Actor,
        name: str,
        reason: str,
        *,
        paused: bool,
    ) -> wire.ConnectorSummary:
        """Pause or resume `name`, recording who (an API key's holder, or `cli:<user>` at the
        command line) and why; asking for its current state is a conflict."""
        idle = await _idle(session, registry, name)
        repository = ConnectorRepository.from_session(session)
        if idle is not None:
            # A connector paused, then disabled, keeps its pause: it can be resumed (or
            # it would be paused again the moment it is enabled), never newly paused.
            kept = await repository.state(name)
            if paused or kept is None or not kept.paused:
                then = (
                    "it is in force within HEDUI_CONNECTOR_REFRESH_S of its enabling: try "
                    "again in a few seconds"
                    if idle.enabled
                    else f"an integrator enables it (POST /v1/connectors/{name}/enable), "
                    "then it can be paused"
                )
                raise Conflict(
                    f"{name} is not in force ({_IDLE_REASON[idle.enabled]}): nothing calls "
                    f"it, so there is nothing to pause or resume; {then}"
                )
        monitor.track(name)
        now = datetime.now(UTC)
        state = (await repository.ensure([name], now))[name]
        pause = wire.Pause(paused_by=actor.name, reason=reason, paused_at=now) if paused else None
        changed = await repository.set_pause(name, pause, now)
        await repository.session.refresh(state)  # as written, by this request or another
        if not changed:
            raise Conflict(
                f"{name} is already paused (by {state.paused_by}: {state.paused_reason})"
                if paused
                else f"{name} is not paused"
            )
        await repository.add_event(
            name, "pause" if paused else "resume", now, actor.name, reason or None
        )
        monitor.set_pause(name, pause, now)
        # Every call to the partner stops or starts again: seen whatever the log level. The
        # key, not its holder's name (a person's, perhaps); the reason is in the events. At
        # the command line there is no key, and no server's log: the command says what it
        # did, and the events and the audit trail say who.
        if actor.key_id is not None:
            log.warning(
                "connector_paused" if paused else "connector_resumed",
                connector=name,
                key_id=actor.key_id,
            )
        return await self._summary(session, registry, monitor, name)

    async def events(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        name: str,
        where: wire.ConnectorEventFilter,
    ) -> wire.ConnectorEventPage:
        # A declarative connector disabled since keeps its history (who paused it, why).
        if name not in registry.names() and (
            await RegistrationRepository.from_session(session).get(name) is None
        ):
            raise ConnectorNotFound()
        listed = listing(f"connectors/{name}/events", where)
        rows = await ConnectorRepository.from_session(session).events(
            name,
            actions=(where.action,) if where.action else ("pause", "resume", *_BREAKER_ACTIONS),
            limit=where.limit + 1,
            after=decode_cursor(where.cursor, listed) if where.cursor else None,
        )
        return wire.ConnectorEventPage(
            items=[
                wire.ConnectorEvent(
                    at=row.at,
                    connector=row.connector,
                    action=cast(wire.EventAction, row.action),
                    actor=row.actor,
                    reason=row.reason,
                )
                for row in rows[: where.limit]
            ],
            next_cursor=next_cursor(rows, where.limit, lambda row: (row.at, row.id), listed),
        )

    async def _summary(
        self,
        session: AsyncSession,
        registry: ConnectorRegistry,
        monitor: HealthMonitor,
        name: str,
    ) -> wire.ConnectorSummary:
        summaries = await self.summaries(session, registry, monitor, monitor.settings)
        return next(summary for summary in summaries if summary.name == name)


_ERROR_ACTIONS = tuple(
    f"error:{outcome.value}"
    for outcome in CallOutcome
    if outcome not in (CallOutcome.ok, CallOutcome.no_record)
)
_BREAKER_ACTIONS = tuple(f"breaker_{state.value}" for state in BreakerState)


_SECRET_NAME = re.compile(r"secret|token|passw|pwd|credential|key|private|cert|salt", re.IGNORECASE)
"""Names of settings shown as ***: whatever may be a secret under any spelling a plugin's
author chose (`sm4_key`, `access_key`, `private_pem`, `client_cert`): hiding a harmless
value costs an integrator a look at the settings, showing a key costs the key."""


def masked_config(config: ConnectorConfig) -> dict[str, Any]:
    """A config as shown to integrators: secret-like fields and URL credentials as ***."""
    values = config.model_dump(mode="json")
    for field_name, field in type(config).model_fields.items():
        secret_type = "Secret" in repr(field.annotation)
        if values.get(field_name) is not None and (secret_type or _SECRET_NAME.search(field_name)):
            values[field_name] = "***"
    for field_name, value in values.items():
        if isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            if parts.password or parts.username:
                host = parts.hostname or ""
                port = f":{parts.port}" if parts.port else ""
                values[field_name] = urlunsplit(parts._replace(netloc=f"***@{host}{port}"))
    return values


def _kinds(connector: object) -> tuple[str, ...]:
    spec = getattr(connector, "spec", None)
    if isinstance(spec, ConnectorSpec):
        return (spec.response.kind,)
    kinds = getattr(connector, "kinds", ())
    return tuple(kinds) if isinstance(kinds, tuple | list) else ()


def _title_and_kinds(
    version: StoredConnectorVersion | None, fallback_title: str
) -> tuple[str, list[str]]:
    """A stored version's title and record kind, as its spec says."""
    spec = version.spec if version is not None and isinstance(version.spec, dict) else {}
    title = spec.get("title")
    kind = (spec.get("response") or {}).get("kind")
    return (
        title if isinstance(title, str) else fallback_title,
        [kind] if isinstance(kind, str) else [],
    )


def _breaker(monitor: HealthMonitor, name: str) -> BreakerState:
    breaker = monitor.breakers.get(name)
    return breaker.state if breaker is not None else BreakerState.closed


_IDLE_REASON = {
    False: "registered, not enabled",
    True: "enabled, not yet in force in this process",
}
"""Why a connector registered over the API is not asked, by whether it is enabled (the
table says so before this process has polled it)."""


async def _held(
    session: AsyncSession, registry: ConnectorRegistry, name: str
) -> Connector | StoredConnector:
    """The connector in force here, taken from the registry before anything is awaited (a
    refresh may take a disabled one out meanwhile, and a later `registry.get` would
    fail); else the registration of one registered over the API and not in force (not
    enabled, disabled, or enabled and not polled yet); `ConnectorNotFound` for any other
    name."""
    if name in registry.names():
        return registry.get(name)
    stored = await RegistrationRepository.from_session(session).get(name)
    if stored is None:
        raise ConnectorNotFound()
    return stored


async def _idle(
    session: AsyncSession, registry: ConnectorRegistry, name: str
) -> StoredConnector | None:
    """None for a connector in force here; else as `_held`."""
    held = await _held(session, registry, name)
    return held if isinstance(held, StoredConnector) else None


def _window_start(now: datetime, settings: Settings) -> datetime:
    # Buckets that started within the window; the oldest may reach a little further back.
    return now - timedelta(seconds=max(settings.health_window_s, settings.health_bucket_s))


async def _windows(
    repository: ConnectorRepository,
    monitor: HealthMonitor,
    name: str | None,
    now: datetime,
    settings: Settings,
) -> tuple[defaultdict[str, Bucket], dict[str, datetime]]:
    """Each connector's counts over the status window, from the buckets that started after
    its breaker last closed: once the partner is back, the outage's failures are history
    (charts still show them), not a reason to keep it degraded for the rest of the window.
    Every process's stored counts, and this one's not stored yet: a failure just seen here
    shows at once, not at the next sync. With them, when the breaker closed of each that
    closed within the window (where its window restarted)."""
    since = _window_start(now, settings)
    closed = await repository.last_events(f"breaker_{BreakerState.closed.value}", since)
    window: defaultdict[str, Bucket] = defaultdict(Bucket)
    stored = await repository.buckets(name, since)
    counted = [(row.connector, row.start, to_bucket(row)) for row in stored]
    for connector, start, bucket in [*counted, *monitor.unsynced(name, since)]:
        closed_at = closed.get(connector)
        if closed_at is None or start >= closed_at:
            window[connector].merge(bucket)
    return window, closed


def _rate(bucket: Bucket) -> float | None:
    return None if bucket.calls == 0 else round(1 - bucket.failures / bucket.calls, 4)


def _assess(
    name: str,
    window: Bucket,
    state: ConnectorState | None,
    monitor: HealthMonitor,
    settings: Settings,
) -> tuple[HealthStatus, str]:
    signals = Signals(
        calls=window.calls,
        failures=window.failures,
        p95_ms=percentile(window.latency, 0.95),
        slo_p95_ms=settings.slo_ms(name),
        breaker=monitor.breakers[name].state,
        last_probe_ok=state.last_probe_ok if state else None,
        last_probe_at=state.last_probe_at if state else None,
        last_success_at=state.last_success_at if state else None,
        last_failure_at=_last_partner_failure(state),
    )
    thresholds = Thresholds(
        min_calls=settings.health_min_calls,
        operational_rate=settings.health_operational_rate,
        degraded_rate=settings.health_degraded_rate,
    )
    return assess(signals, thresholds)


def _last_partner_failure(state: ConnectorState | None) -> datetime | None:
    if state is None or state.last_error_outcome not in _PARTNER_FAILURES:
        return None
    return state.last_error_at


_PARTNER_FAILURES = frozenset(outcome.value for outcome in PARTNER_FAILURES)


def _series(
    rows: Sequence[ConnectorBucket], since: datetime, now: datetime, width: timedelta
) -> list[wire.SeriesPoint]:
    step = width.total_seconds()
    first = datetime.fromtimestamp(since.timestamp() - since.timestamp() % step, UTC)
    count = int((now - first).total_seconds() // step) + 1
    buckets = [Bucket() for _ in range(count)]
    for row in rows:
        if row.start < first:
            continue
        index = int((row.start - first).total_seconds() // step)
        if 0 <= index < count:
            buckets[index].merge(to_bucket(row))
    return [
        wire.SeriesPoint(
            start=first + index * width,
            calls=bucket.calls,
            failures=bucket.failures,
            refused=bucket.refused,
            error_rate=None if bucket.calls == 0 else round(bucket.failures / bucket.calls, 4),
            p95_ms=percentile(bucket.latency, 0.95),
        )
        for index, bucket in enumerate(buckets)
    ]


connector = ConnectorService()
