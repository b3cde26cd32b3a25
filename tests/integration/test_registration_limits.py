"""How many declarative connectors, and versions of one, may be registered: bounded, as
every size is (each enabled connector is asked in every verification; versions are kept,
and listed with their connector)."""

import pytest

from service.auth.principal import Principal, Role
from service.config import Settings
from service.connector.registration_service import registration as registration_service
from service.errors import Conflict
from service.runtime import build_runtime
from tests.connectors.declarative.specs import example

INTEGRATOR = Principal(key_id="k-int", name="integrator", role=Role.integrator, region_prefix="")


async def test_connectors_and_versions_past_the_limits_are_409_and_store_nothing(
    own_database_url: str,
) -> None:
    settings = Settings(
        database_url=own_database_url, max_declarative_connectors=2, max_connector_versions=2
    )
    specs = [
        {**example("tax", "http://127.0.0.1:9/sandbox"), "name": name}
        for name in ("tax_a", "tax_b", "tax_c")
    ]
    async with build_runtime(settings) as runtime, runtime.session_factory() as session:
        for spec in specs[:2]:
            await registration_service.register(
                session, INTEGRATOR, spec, runtime.registry, settings
            )
        with pytest.raises(Conflict, match="HEDUI_MAX_DECLARATIVE_CONNECTORS"):
            await registration_service.register(
                session, INTEGRATOR, specs[2], runtime.registry, settings
            )
        second = await registration_service.new_version(
            session, INTEGRATOR, "tax_a", specs[0], settings
        )
        with pytest.raises(Conflict, match="HEDUI_MAX_CONNECTOR_VERSIONS"):
            await registration_service.new_version(session, INTEGRATOR, "tax_a", specs[0], settings)
        after = await registration_service.read(session, "tax_a")

    assert [version.version for version in second.versions] == [1, 2]
    assert [version.version for version in after.versions] == [1, 2]
