"""A plugin installed after a declarative connector of the same name was registered: the
plugin answers under the name, start-up says so, and the registration cannot be enabled
(it would put nothing in force)."""

import logging
from typing import ClassVar

import pytest

from connectors.registry import load_connectors
from schemas import connector_registration as wire
from service.auth.principal import Principal, Role
from service.config import Settings
from service.connector.registration_service import registration as registration_service
from service.errors import Conflict
from service.logging import configure_logging
from service.runtime import build_runtime
from tests.connectors.declarative.specs import example
from tests.connectors.support import PluginDouble

INTEGRATOR = Principal(
    key_id="k-integrator", name="integrator", role=Role.integrator, region_prefix=""
)


class TaxPlugin(PluginDouble):
    """A plugin connector that took the name `tax`."""

    name: ClassVar[str] = "tax"
    title: ClassVar[str] = "tax, as a plugin"


async def test_a_plugin_that_takes_a_declarative_connector_s_name_is_said_at_start_up(
    own_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("INFO")
    settings = Settings(database_url=own_database_url)
    async with build_runtime(settings) as runtime, runtime.session_factory() as session:
        spec = example("tax", "http://127.0.0.1:9/sandbox")
        await registration_service.register(session, INTEGRATOR, spec, runtime.registry, settings)
        await registration_service.enable(
            session, "tax", wire.ConnectorEnable(force=True), runtime.registry
        )
        await session.commit()

    with_plugin = load_connectors()
    with_plugin.add(TaxPlugin(), origin="plugin")
    async with build_runtime(settings, registry=with_plugin, serving=True) as runtime:
        assert runtime.registry.origin("tax") == "plugin"
        assert runtime.registry.get("tax").title == "tax, as a plugin"
        async with runtime.session_factory() as session:
            with pytest.raises(Conflict, match="plugin connector's name now"):
                await registration_service.enable(
                    session, "tax", wire.ConnectorEnable(force=True), runtime.registry
                )

    warned = [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == "declarative_connector_shadowed"
        and record.levelno == logging.WARNING
    ]
    assert [(w["connector"], w["origin"]) for w in warned] == [("tax", "plugin")]
