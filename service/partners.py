"""Service-side wiring of connectors: their configs from settings, and the source plan."""

from typing import Any

from pydantic import ValidationError

from connectors.base import ConnectorConfig
from connectors.registry import ConnectorRegistry
from service.config import Settings


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


def source_plan(registry: ConnectorRegistry) -> list[tuple[str, str]]:
    """(source, connector version) for every source a new verification will ask."""
    return [(name, registry.get(name).version) for name in sorted(registry.names())]
