"""The example plugin package, installed into this environment as an integrator would: it is
discovered through its entry point, listed with origin `plugin`, asked in a verification
against its sandbox agency, and its records become findings."""

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.cli import app
from service.db import create_engine, create_session_factory
from tests.conftest import CLIENT_TLS, LiveService, running_service, service_settings
from tests.factories import make_id_number, member, verification_body

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hedui-connector-social-insurance"
DISTRIBUTION = "hedui-connector-social-insurance"


def _pip(*args: str) -> None:
    subprocess.run(  # noqa: S603 - this interpreter's own pip, fixed arguments
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example installed by pip (built from a copy, so the checkout gains no build
    files) into a directory of its own, on this test process's path for the module.

    Not into the shared environment: the suite runs on several processes at once, and any
    of them starting a service meanwhile would find the plugin and ask its partner too."""
    source = tmp_path_factory.mktemp("plugin") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path_factory.mktemp("site-packages")
    _pip("install", "--no-deps", "--no-build-isolation", "--target", str(target), str(source))
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        importlib.invalidate_caches()


@pytest.fixture(scope="module")
def plugin(plugin_path: Path) -> Path:
    """The example's source tree, with the plugin installed."""
    return EXAMPLE


@pytest.fixture(scope="module")
async def service(
    plugin: Path, fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveService]:
    """A service started after the plugin was installed (connectors are found at start-up)."""
    sandbox_data = Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db"
    settings = service_settings(fresh_database_url, sandbox_data)
    async with running_service(settings) as live:
        yield live


async def _client(live: LiveService, role: Role, region: str) -> httpx.AsyncClient:
    engine = create_engine(live.settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            _, token = await create_api_key(
                session, name=f"plugin-{role}", role=role, region=region
            )
            await session.commit()
    finally:
        await engine.dispose()
    return httpx.AsyncClient(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=CLIENT_TLS,
    )


async def test_the_plugin_is_listed_with_origin_plugin(service: LiveService) -> None:
    async with await _client(service, Role.operator, "00") as operator:
        listed = {item["name"]: item for item in (await operator.get("/v1/connectors")).json()}
        detail = (await operator.get("/v1/connectors/social_insurance")).json()

    plugin = listed["social_insurance"]
    assert (plugin["origin"], plugin["kinds"], plugin["enabled"]) == (
        "plugin",
        ["social_insurance"],
        True,
    )
    assert listed["bank"]["origin"] == "builtin"
    assert (detail["origin"], detail["package"]) == ("plugin", DISTRIBUTION)
    assert detail["config"]["base_url"].endswith("/sandbox/social_insurance")
    assert detail["config"]["concurrency"] == 5


async def test_a_verification_asks_it_and_its_records_become_findings(
    service: LiveService,
) -> None:
    insured = make_id_number()
    async with httpx.AsyncClient(base_url=service.base_url, verify=CLIENT_TLS) as plain:
        seeded = await plain.post(
            "/sandbox/people",
            json={
                "id_number": insured,
                "social_insurance": {"employer": "县人民医院", "monthly_base": 9000},
            },
        )
        assert seeded.status_code == 200, seeded.text
    async with await _client(service, Role.caseworker, "53") as caseworker:
        created = await caseworker.post(
            "/v1/verifications",
            json=verification_body([member(insured)]),
            headers={"Prefer": "wait=20"},
        )
        assert created.status_code in (200, 202), created.text
        report = (await caseworker.get(f"/v1/verifications/{created.json()['id']}/report")).json()

    (source,) = [s for s in report["sources"] if s["source"] == "social_insurance"]
    assert (source["status"], source["connector_version"]) == ("ok", "1.0.0")
    (finding,) = [
        f for f in report["findings"] if f["code"] == "social_insurance_base_over_standard"
    ]
    assert finding["severity"] == "warning"
    assert finding["evidence"][0]["source"] == "social_insurance"
    assert "monthly_base=9000.00" in finding["evidence"][0]["fact"]
    assert report["recommendation"] == "review"


def test_the_plugin_passes_its_own_conformance_suite(plugin: Path, plugin_path: Path) -> None:
    """Its tests import `connectors.testing` and nothing of hedui's test tree."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=plugin,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), *sys.path])},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


def test_hedui_connector_test_passes_for_the_plugin(
    plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDUI_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")

    result = CliRunner().invoke(app, ["connector", "test", "social_insurance"])

    assert result.exit_code == 0, result.output
    assert "all 10 checks passed" in result.output
