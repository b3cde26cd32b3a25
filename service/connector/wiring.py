"""Service-side wiring of connectors: their configs (from settings, or a declarative
connector's spec), the source plan, and the start-up check that warns about partners hedui
cannot reach."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from connectors.base import CheckResult, Connector, ConnectorConfig
from connectors.declarative import DeclarativeConnector
from connectors.registry import ConnectorRegistry
from service.config import Settings
from service.connector.meter import CallMeter, PartnerPaused, Turns
from service.connector.throttle import Limits, Throttle
from service.connector.unloadable import UnloadableConnector

log = structlog.get_logger(__name__)

STARTUP_CHECK_S = 3.0
"""How long one connector's start-up check may take before it counts as unreachable."""
NOT_CHECKED = (
    "not checked: no turn came under the partner's agreed rate and concurrency within the "
    "check's time (other calls were using them), so the partner was not asked"
)
"""The start-up check's detail when it found no turn: says nothing of the partner."""
PAUSED_NOT_CALLED = "paused by operator: not called"
"""A check's detail when the partner was paused before it, or while it ran."""
LISTEN_WAIT_S = 5.0
"""How long the checks wait for this server to listen when the sandbox is served in it."""


class ConnectorConfigError(RuntimeError):
    """A connector's settings are invalid; raised at startup, never at request time."""


def build_configs(registry: ConnectorRegistry, settings: Settings) -> dict[str, ConnectorConfig]:
    base = settings.resolved_partner_base_url()
    configs: dict[str, ConnectorConfig] = {}
    for name in registry.names():
        connector = registry.get(name)
        values: dict[str, Any] = {
            "base_url": f"{base}/{name}",
            "timeout_s": settings.connector_timeout_s,
            "request_timeout_s": min(settings.connector_timeout_s, 5.0),
        }
        values.update(settings.connectors.get(name, {}))
        try:
            configs[name] = connector.Config(**values)
        except ValidationError as exc:
            raise ConnectorConfigError(
                f"settings for connector {name!r} are invalid: {exc}"
            ) from exc
    unknown = set(settings.connectors) - set(configs)
    if unknown:
        raise ConnectorConfigError(f"settings name unknown connectors: {sorted(unknown)}")
    return configs


def config_of(connector: Connector, configs: Mapping[str, ConnectorConfig]) -> ConnectorConfig:
    """The config calls to `connector` are made with: a declarative connector's comes from
    its spec (base URL and limits), a built-in or plugin connector's from the settings
    (`configs`, see `build_configs`); `KeyError` when the settings have none for it. The
    stand-in for a spec that no longer loads has a config that is never used to call."""
    if isinstance(connector, DeclarativeConnector | UnloadableConnector):
        return connector.default_config()
    return configs[connector.name]


def source_plan(registry: ConnectorRegistry) -> list[tuple[str, str]]:
    """(source, connector version) for every source a new verification will ask."""
    return [(name, registry.get(name).version) for name in sorted(registry.names())]


async def check_connectors(
    registry: ConnectorRegistry,
    configs: dict[str, ConnectorConfig],
    client: httpx.AsyncClient,
    *,
    timeout_s: float = STARTUP_CHECK_S,
    throttle: Throttle | None = None,
    paused: Callable[[str], bool] = lambda _name: False,
) -> dict[str, CheckResult]:
    """The `check` of every connector in force (declarative ones with their spec's own
    config), concurrently, each cut off after `timeout_s`; a connector for which `paused`
    is true is left out (an operator's pause stops every call to its partner).

    Logs a warning naming each connector that is not ok; never raises, so a partner that
    is down (or a connector whose check is broken) never stops hedui from starting.
    """
    names = _unpaused(registry, paused)
    connectors = [registry.get(name) for name in names]
    results = await asyncio.gather(
        *(
            ask_check(connector, config_of(connector, configs), client, timeout_s, throttle)
            for connector in connectors
        )
    )
    outcome = {name: result for name, (result, _) in zip(names, results, strict=True)}
    report_checks(outcome)
    return outcome


def _unpaused(registry: ConnectorRegistry, paused: Callable[[str], bool]) -> list[str]:
    names = []
    for name in registry.names():
        if paused(name):
            log.info("connector_not_checked_paused", connector=name)
        else:
            names.append(name)
    return names


def report_checks(outcome: Mapping[str, CheckResult]) -> None:
    """Log a warning naming each connector whose check failed, then the count of those
    that passed."""
    for name, result in outcome.items():
        if result.ok:
            continue
        if result.detail == NOT_CHECKED:
            log.warning(
                "connector_not_checked",
                connector=name,
                detail=result.detail,
                hint="hedui's own calls were using the partner's agreed rate and concurrency; "
                "its health shows once real calls or the health probes reach it",
            )
            continue
        log.warning(
            "connector_unreachable",
            connector=name,
            detail=result.detail,
            hint="every verification will be review until this partner answers",
        )
    ok = sum(result.ok for result in outcome.values())
    log.info("connectors_checked", ok=ok, total=len(outcome))


async def ask_check(
    connector: Connector,
    config: ConnectorConfig,
    client: httpx.AsyncClient,
    timeout_s: float,
    throttle: Throttle | None = None,
    paused: Callable[[], bool] | None = None,
) -> tuple[CheckResult, bool]:
    """`connector`'s `check()`, cut off after `timeout_s` and, with `throttle`, through
    the partner's agreed limits as every call to it is: its result, and whether it says
    nothing of the partner's health: no turn under those limits came in time (the result
    is `NOT_CHECKED`), or `paused` said an operator paused the partner meanwhile (its next
    request, a retry say, is not sent; the result is `PAUSED_NOT_CALLED`). Never raises: a
    check that crashes is a failing check. What the start-up check and the health
    monitor's probes both ask; neither records anything here."""
    meter: CallMeter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            if throttle is None and paused is None:
                result = await connector.check(config, client)
            else:
                deadline = asyncio.get_running_loop().time() + timeout_s
                limits = Limits(config.max_concurrency, config.rate_per_s)
                turns = Turns(throttle, connector.name, limits, deadline) if throttle else None
                meter = CallMeter(client, turns, paused=paused)
                async with meter.client() as turned:
                    result = await connector.check(config, turned)
    except TimeoutError:
        result = CheckResult(ok=False, detail=f"no answer within {timeout_s:g} s")
    except PartnerPaused:
        result = CheckResult(ok=False, detail=PAUSED_NOT_CALLED)
    except Exception as error:  # a plugin's broken check must not stop start-up or probes
        log.warning("probe_crashed", source=connector.name, error_type=type(error).__name__)
        result = CheckResult(ok=False, detail=f"check failed ({type(error).__name__})")
    if meter is not None and meter.stopped:
        # Paused while it ran: whatever the connector made of the request not sent.
        return CheckResult(ok=False, detail=PAUSED_NOT_CALLED), True
    if meter is not None and meter.starved:
        # No turn came under the partner's limits: it was never asked, whatever error the
        # connector made of that.
        return CheckResult(ok=False, detail=NOT_CHECKED), True
    return result, False


async def check_connectors_once_listening(
    settings: Settings,
    registry: ConnectorRegistry,
    configs: dict[str, ConnectorConfig],
    client: httpx.AsyncClient,
    throttle: Throttle | None = None,
    paused: Callable[[str], bool] = lambda _name: False,
    probe_round: Callable[[], Awaitable[dict[str, CheckResult]]] | None = None,
) -> None:
    """The start-up check, run in the background once this server accepts connections;
    a connector for which `paused` is true then is not checked. With `probe_round` (the
    connector health monitor's round of probes, recorded as probes are), that round is the
    check, and the monitor's own first round is left to it: a partner is asked once. A
    partner another process probed within the interval is not asked again (nor logged
    here): that process's round took its turn.

    With the sandbox served by this very process, its agencies answer only once the server
    listens, which is after the lifespan has started: so wait for that first.
    """
    if settings.sandbox_enabled:
        await _until_listening(settings)
    if probe_round is None:
        await check_connectors(registry, configs, client, throttle=throttle, paused=paused)
    else:
        unpaused = _unpaused(registry, paused)  # logs the paused ones, which probes leave out
        outcome = await probe_round()
        if outcome or not unpaused:
            report_checks(outcome)
        else:  # not "0 of 0 ok", which reads as if there were no connectors
            log.info(
                "connectors_checked_elsewhere",
                connectors=len(unpaused),
                hint="another process asked every partner moments ago: its log, the "
                "dashboard and GET /v1/connectors say how they answered",
            )


async def _until_listening(settings: Settings) -> None:
    url = httpx.URL(settings.resolved_partner_base_url())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LISTEN_WAIT_S
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection(url.host, url.port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
