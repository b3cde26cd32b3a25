"""Find connectors through entry points and validate them before the service starts.

A broken connector stops startup with a `ConnectorRegistrationError` naming its entry
point; it is never logged and skipped, which would silently verify households against
fewer sources than configured.
"""

import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Literal, Self

from pydantic import BaseModel

from connectors.base import Connector, ConnectorConfig

GROUP = "hedui.connectors"
DISTRIBUTION = "hedui"
"""Entry points declared by this distribution are `builtin`; any other's are `plugin`."""

Origin = Literal["builtin", "plugin", "declarative"]

# Names become config keys and URL path segments, so they stay plain identifiers.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MEMBERS = ("name", "title", "version", "Config", "check", "fetch")


class ConnectorRegistrationError(Exception):
    """A connector cannot be registered; raised at startup."""

    def __init__(self, message: str, *, entry_point: str | None = None) -> None:
        self.entry_point = entry_point
        prefix = f"connector entry point {entry_point!r}: " if entry_point else ""
        super().__init__(prefix + message)


class UnknownConnectorError(KeyError):
    """No connector is registered under this name."""


@dataclass(frozen=True)
class _Registration:
    connector: Connector
    origin: Origin
    package: str | None = None


class ConnectorRegistry:
    """The validated connectors of this process, by name, in registration order."""

    def __init__(self) -> None:
        self._registrations: dict[str, _Registration] = {}
        self._declared: dict[str, Connector] = {}
        """Declarative connectors in force (enabled, active version), by name."""
        self._versions: dict[tuple[str, str], Connector] = {}
        """Every known version of every declarative connector, for runs created earlier."""

    @classmethod
    def from_entry_points(cls, points: Iterable[EntryPoint]) -> Self:
        registry = cls()
        for point in points:
            try:
                loaded = point.load()
            except Exception as error:
                raise ConnectorRegistrationError(
                    f"{point.value} could not be loaded ({type(error).__name__}: {error})",
                    entry_point=point.name,
                ) from error
            try:
                connector = validate_connector(loaded)
                if connector.name != point.name:
                    raise ConnectorRegistrationError(
                        f"connector is named {connector.name!r}; the names must be equal"
                    )
                registry.add(
                    connector,
                    origin=_origin(point),
                    package=point.dist.name if point.dist is not None else None,
                )
            except ConnectorRegistrationError as error:
                raise ConnectorRegistrationError(str(error), entry_point=point.name) from None
        return registry

    def add(
        self, connector: object, origin: Origin = "builtin", *, package: str | None = None
    ) -> Connector:
        """Validate and register a connector (an instance, or a class taking no arguments);
        `package` names the distribution that provides it."""
        instance = validate_connector(connector)
        if instance.name in self._registrations:
            raise ConnectorRegistrationError(
                f"name {instance.name!r} is already registered "
                f"({self._registrations[instance.name].origin})"
            )
        self._registrations[instance.name] = _Registration(instance, origin, package)
        return instance

    def get(self, name: str) -> Connector:
        registration = self._registrations.get(name)
        if registration is not None:
            return registration.connector
        try:
            return self._declared[name]
        except KeyError:
            raise UnknownConnectorError(name) from None

    def get_version(self, name: str, version: str | None) -> Connector:
        """The connector a verification planned: a declarative one exactly at `version`."""
        registration = self._registrations.get(name)
        if registration is not None or version is None:
            return self.get(name)
        try:
            return self._versions[name, version]
        except KeyError:
            raise UnknownConnectorError(name) from None

    def origin(self, name: str) -> Origin:
        registration = self._registrations.get(name)
        if registration is not None:
            return registration.origin
        if name in self._declared or any(known == name for known, _ in self._versions):
            return "declarative"
        raise UnknownConnectorError(name)

    def package(self, name: str) -> str | None:
        """The distribution a code connector came from (None: declarative, or added by hand)."""
        registration = self._registrations.get(name)
        return registration.package if registration is not None else None

    def names(self) -> list[str]:
        """Names in force, code connectors first; `get` gives each one's connector."""
        return [*self._registrations, *self._declared]

    def is_code(self, name: str) -> bool:
        """Whether `name` belongs to a built-in or plugin connector (not declarative)."""
        return name in self._registrations

    def set_declared(
        self, in_force: dict[str, Connector], versions: dict[tuple[str, str], Connector]
    ) -> None:
        """Replace the declarative connectors (in force, and every version known) at once."""
        clashes = set(in_force) & set(self._registrations)
        if clashes:
            raise ConnectorRegistrationError(f"names taken by code connectors: {sorted(clashes)}")
        self._versions = dict(versions)
        self._declared = dict(in_force)


def load_connectors(group: str = GROUP) -> ConnectorRegistry:
    """Every connector of the entry-point `group`, validated; raises on the first bad one."""
    return ConnectorRegistry.from_entry_points(entry_points(group=group))


def validate_connector(candidate: object) -> Connector:
    """The connector instance behind `candidate`, or `ConnectorRegistrationError` saying why not."""
    label = getattr(candidate, "__qualname__", type(candidate).__qualname__)
    instance = candidate
    if inspect.isclass(candidate):
        try:
            instance = candidate()
        except Exception as error:
            raise ConnectorRegistrationError(
                f"{label} cannot be created without arguments ({type(error).__name__})"
            ) from error

    missing = [member for member in _MEMBERS if not hasattr(instance, member)]
    if missing:
        raise ConnectorRegistrationError(
            f"{label} does not implement the Connector protocol (missing {', '.join(missing)})"
        )
    for attribute in ("name", "title", "version"):
        value = getattr(instance, attribute)
        if not isinstance(value, str) or not value.strip():
            raise ConnectorRegistrationError(f"{label}.{attribute} must be a non-empty string")
    name = getattr(instance, "name")  # noqa: B009 - checked by hasattr above, not yet typed
    if not _NAME.match(name):
        raise ConnectorRegistrationError(f"{label}.name {name!r} is not a lower-case identifier")

    config = getattr(instance, "Config")  # noqa: B009 - as above
    if not (inspect.isclass(config) and issubclass(config, BaseModel)):
        raise ConnectorRegistrationError(f"{label}.Config is not a pydantic model")
    if not issubclass(config, ConnectorConfig):
        raise ConnectorRegistrationError(f"{label}.Config does not extend ConnectorConfig")

    for method in ("check", "fetch"):
        if not inspect.iscoroutinefunction(getattr(instance, method)):
            raise ConnectorRegistrationError(f"{label}.{method} must be an async method")
    if not isinstance(instance, Connector):  # the protocol's own check, after the precise ones
        raise ConnectorRegistrationError(f"{label} does not implement the Connector protocol")
    return instance


def _origin(point: EntryPoint) -> Origin:
    if point.dist is not None:
        return "builtin" if point.dist.name == DISTRIBUTION else "plugin"
    # Entry points built by hand (tests) carry no distribution: judge by the module.
    return "builtin" if point.module.split(".")[0] == "connectors" else "plugin"
