"""Connector discovery: every broken declaration stops startup with a clear message."""

import sys
import types
from importlib.metadata import EntryPoint
from typing import ClassVar

import httpx
import pytest
from pydantic import BaseModel

from connectors.base import CheckResult, ConnectorConfig
from connectors.registry import (
    GROUP,
    ConnectorRegistrationError,
    ConnectorRegistry,
    UnknownConnectorError,
    load_connectors,
)
from connectors.vehicles import VehiclesConnector
from schemas.evidence import Evidence
from tests.connectors.support import PluginDouble

BUILTIN = ["vehicles", "pensions", "housing_fund", "real_estate", "public_payroll", "bank"]
PLUGINS = "hedui_fake_plugins"


class FakeConnector(PluginDouble):
    name: ClassVar[str] = "fake"
    title: ClassVar[str] = "测试 fake"
    version: ClassVar[str] = "0.1.0"


class OtherFake(FakeConnector):
    name: ClassVar[str] = "other"


class PlainConfig:
    base_url: str


class NotPydanticConfig(FakeConnector):
    name: ClassVar[str] = "not_pydantic"
    Config = PlainConfig  # type: ignore[assignment]


class ForeignModel(BaseModel):
    base_url: str


class UnrelatedConfig(FakeConnector):
    name: ClassVar[str] = "unrelated"
    Config = ForeignModel  # type: ignore[assignment]


class NoFetch:
    name = "no_fetch"
    title = "t"
    version = "1"
    Config = ConnectorConfig

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        return CheckResult(ok=True)


class SyncFetch(FakeConnector):
    name: ClassVar[str] = "sync_fetch"

    def fetch(self, *args: object) -> Evidence:  # type: ignore[override]
        return Evidence(answered=[])


class NeedsArguments(FakeConnector):
    def __init__(self, secret: str) -> None:
        self.secret = secret


class BlankTitle(FakeConnector):
    title: ClassVar[str] = " "


class ShadowVehicles(FakeConnector):
    name: ClassVar[str] = "vehicles"


class BadName(FakeConnector):
    name: ClassVar[str] = "Bad-Name"


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module that entry points can name, standing in for a third-party distribution."""
    module = types.ModuleType(PLUGINS)
    for obj in (
        FakeConnector,
        OtherFake,
        NotPydanticConfig,
        UnrelatedConfig,
        NoFetch,
        SyncFetch,
        NeedsArguments,
        BlankTitle,
        BadName,
        ShadowVehicles,
    ):
        setattr(module, obj.__name__, obj)
    module.not_a_connector = len  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PLUGINS, module)
    return module


def point(name: str, target: str) -> EntryPoint:
    value = target if ":" in target else f"{PLUGINS}:{target}"
    return EntryPoint(name=name, value=value, group=GROUP)


def load(*points: EntryPoint) -> ConnectorRegistry:
    return ConnectorRegistry.from_entry_points(points)


class TestLoadConnectors:
    def test_finds_the_six_builtin_sources(self) -> None:
        registry = load_connectors()
        assert sorted(registry.names()) == sorted(BUILTIN)
        assert {registry.origin(name) for name in registry.names()} == {"builtin"}
        assert all(registry.get(name).name == name for name in BUILTIN)

    def test_an_unknown_group_is_empty(self) -> None:
        assert load_connectors("hedui.nothing_here").names() == []


class TestEntryPointValidation:
    def test_a_valid_plugin_is_registered_as_plugin(self) -> None:
        registry = load(point("fake", "FakeConnector"))
        assert isinstance(registry.get("fake"), FakeConnector)
        assert registry.origin("fake") == "plugin"

    def test_duplicate_name(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match=r"'fake'.*already registered") as info:
            load(point("fake", "FakeConnector"), point("fake", "FakeConnector"))
        assert info.value.entry_point == "fake"

    def test_plugin_may_not_shadow_a_builtin(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match=r"'vehicles'.*already registered"):
            load(
                point("vehicles", "connectors.vehicles:VehiclesConnector"),
                point("vehicles", "ShadowVehicles"),
            )

    def test_name_differs_from_entry_point_name(self) -> None:
        with pytest.raises(
            ConnectorRegistrationError, match=r"entry point 'renamed': connector is named 'fake'"
        ):
            load(point("renamed", "FakeConnector"))

    def test_not_a_connector(self) -> None:
        with pytest.raises(
            ConnectorRegistrationError, match=r"'odd'.*does not implement the Connector protocol"
        ):
            load(point("odd", "not_a_connector"))

    def test_missing_method(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match="missing fetch"):
            load(point("no_fetch", "NoFetch"))

    def test_sync_method(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match="fetch must be an async method"):
            load(point("sync_fetch", "SyncFetch"))

    def test_config_not_pydantic(self) -> None:
        with pytest.raises(
            ConnectorRegistrationError,
            match=r"entry point 'not_pydantic'.*Config is not a pydantic model",
        ):
            load(point("not_pydantic", "NotPydanticConfig"))

    def test_config_not_a_connector_config(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match="does not extend ConnectorConfig"):
            load(point("unrelated", "UnrelatedConfig"))

    def test_class_needing_arguments(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match="without arguments"):
            load(point("fake", "NeedsArguments"))

    def test_blank_title(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match="title must be a non-empty string"):
            load(point("fake", "BlankTitle"))

    def test_name_not_an_identifier(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match="not a lower-case identifier"):
            load(point("Bad-Name", "BadName"))

    def test_import_error_names_the_entry_point(self) -> None:
        with pytest.raises(
            ConnectorRegistrationError, match=r"entry point 'ghost'.*could not be loaded"
        ):
            load(point("ghost", "hedui_no_such_module:Connector"))

    def test_missing_attribute_names_the_entry_point(self) -> None:
        with pytest.raises(ConnectorRegistrationError, match=r"entry point 'ghost'"):
            load(point("ghost", "NoSuchClass"))

    def test_builtin_origin_without_distribution_metadata(self) -> None:
        registry = load(point("vehicles", "connectors.vehicles:VehiclesConnector"))
        assert registry.origin("vehicles") == "builtin"


class TestExplicitRegistry:
    def test_add_get_names_and_iteration(self) -> None:
        registry = ConnectorRegistry()
        fake = registry.add(FakeConnector(), origin="declarative")
        registry.add(OtherFake)
        assert registry.get("fake") is fake
        assert registry.names() == ["fake", "other"]
        assert [registry.get(name).name for name in registry.names()] == ["fake", "other"]
        assert registry.origin("fake") == "declarative"
        assert registry.origin("other") == "builtin"

    def test_unknown_name_is_a_key_error(self) -> None:
        with pytest.raises(KeyError):
            ConnectorRegistry().get("nope")
        with pytest.raises(UnknownConnectorError):
            ConnectorRegistry().origin("nope")

    def test_add_validates_too(self) -> None:
        registry = ConnectorRegistry()
        with pytest.raises(ConnectorRegistrationError, match="Config is not a pydantic model"):
            registry.add(NotPydanticConfig())
        assert registry.names() == []

    def test_add_refuses_a_second_connector_with_the_same_name(self) -> None:
        registry = ConnectorRegistry()
        registry.add(VehiclesConnector())
        with pytest.raises(ConnectorRegistrationError, match="already registered"):
            registry.add(VehiclesConnector, origin="plugin")
