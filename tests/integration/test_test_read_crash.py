"""A connector bug that a partner's answer sets off during an integrator's test read: the
read failed, as a verification's source would ("connector failed"), never a 500, and the
message the bug raised is not quoted (it may hold what the partner sent)."""

import logging
from datetime import UTC, datetime

import pytest

from schemas import connector_registration as wire
from service.auth.principal import Principal, Role
from service.config import Settings
from service.connector import registration_service as module
from service.connector.registration_service import registration as registration_service
from service.logging import configure_logging
from service.runtime import build_runtime
from tests.connectors.declarative.specs import example
from tests.factories import make_id_number

INTEGRATOR = Principal(key_id="k-int", name="integrator", role=Role.integrator, region_prefix="")


async def test_a_crash_in_the_connector_is_a_failed_read_that_quotes_nothing(
    own_database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("INFO")
    person = make_id_number("530102")

    async def crashes(*_: object, **__: object) -> None:
        raise KeyError(f"{person} 张三丰")  # what a bug might carry: the partner's text

    monkeypatch.setattr(module, "fetch_evidence", crashes)
    settings = Settings(database_url=own_database_url)
    async with build_runtime(settings) as runtime, runtime.session_factory() as session:
        spec = example("tax", "http://127.0.0.1:9/sandbox")
        await registration_service.register(session, INTEGRATOR, spec, runtime.registry, settings)
        body = wire.ConnectorTestRequest.model_validate(
            {"region_code": "530102", "members": [{"id_number": person, "name": "张三丰"}]}
        )
        result = await registration_service.test_read(
            session, INTEGRATOR, "tax", body, datetime.now(UTC)
        )
        versions = await registration_service.read(session, "tax")

    assert (result.ok, result.error) == (False, "connector failed (KeyError)")
    assert result.records == []
    assert not any(version.tested_ok for version in versions.versions)
    crashed = [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "test_read_crashed"
    ]
    assert [(c["connector"], c["error_type"]) for c in crashed] == [("tax", "KeyError")]
    assert person not in caplog.text
    assert "张三丰" not in caplog.text
    assert logging.WARNING in {record.levelno for record in caplog.records}
