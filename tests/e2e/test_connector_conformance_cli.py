"""`hedui connector test NAME`: the conformance checks against the in-process sandbox for
every built-in and declarative connector, a recorded exchange, and a broken spec."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from service.cli import app
from tests.conftest import ClientFactory, LiveService
from tests.connectors.declarative.specs import EXAMPLES, example

BUILT_IN = ("vehicles", "pensions", "housing_fund", "real_estate", "public_payroll", "bank")
A = "11010519491231002X"


@pytest.fixture(autouse=True)
def _own_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDUI_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")


def hedui(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), terminal_width=200)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_connector_passes(name: str) -> None:
    result = hedui("connector", "test", name)

    assert result.exit_code == 0, result.output
    assert "all 10 checks passed" in result.output
    assert "the time limit holds" in result.output


@pytest.mark.parametrize("name", ["tax", "business"])
def test_the_example_declarative_specs_pass(name: str) -> None:
    result = hedui("connector", "test", name, "--spec", str(EXAMPLES / f"{name}.json"))

    assert result.exit_code == 0, result.output
    assert "all 10 checks passed" in result.output


def test_a_broken_spec_fails_with_what_to_fix(tmp_path: Path) -> None:
    spec = example("tax")
    spec["mode"]["member"] = "idNumber"  # the partner echoes `sfzh`
    broken = tmp_path / "tax.json"
    broken.write_text(json.dumps(spec), encoding="utf-8")

    result = hedui("connector", "test", "tax", "--spec", str(broken))

    assert result.exit_code == 1, result.output
    assert "checks failed" in result.output
    assert "mode.member found no ID number in an answer item" in result.output
    assert "mode.member, mode.lists, response.answers" in result.output


def test_a_spec_selecting_no_records_fails(tmp_path: Path) -> None:
    spec = example("tax")
    spec["response"]["records"] = "result[?found]"  # the partner's list is `results`
    broken = tmp_path / "tax.json"
    broken.write_text(json.dumps(spec), encoding="utf-8")

    result = hedui("connector", "test", "tax", "--spec", str(broken))

    assert result.exit_code == 1, result.output
    # The partner's answers have no `result` list at all: each is malformed, not "no record".
    assert "response.records selected nothing" in result.output


def test_an_invalid_spec_file_names_the_field(tmp_path: Path) -> None:
    spec = example("tax")
    spec["response"]["fields"]["annual_amount"]["expr"] = "taxableIncome[?"
    broken = tmp_path / "tax.json"
    broken.write_text(json.dumps(spec), encoding="utf-8")

    result = hedui("connector", "test", "tax", "--spec", str(broken))

    assert result.exit_code == 1, result.output
    assert "/response/fields/annual_amount/expr" in result.output


def test_a_recorded_exchange_stands_in_for_the_partner(tmp_path: Path) -> None:
    recording = {
        "members": [A],
        "exchanges": [
            {
                "method": "POST",
                "path": "/income/batch",
                "body": {
                    "retCode": "000000",
                    "results": [
                        {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 4800000}
                    ],
                },
            },
            {"method": "GET", "path": "/health", "body": {"retCode": "000000"}},
        ],
    }
    path = tmp_path / "tax-exchange.json"
    path.write_text(json.dumps(recording), encoding="utf-8")

    result = hedui(
        "connector", "test", "tax", "--spec", str(EXAMPLES / "tax.json"), "--recording", str(path)
    )

    assert result.exit_code == 0, result.output
    assert "1 record for 1 of 1" in result.output
    assert "skip" in result.output  # comparing per-member answers needs the sandbox
    assert "9 checks passed, 1 skipped" in " ".join(result.output.split())
    assert "all 10 checks passed" not in result.output


@pytest.mark.parametrize(
    ("name", "flags"),
    [("county_cars", ()), ("tax", ("--agency", "nosuch"))],
    ids=["named after its own partner", "a mistyped --agency"],
)
def test_no_sandbox_agency_to_run_against_is_said_before_any_check(
    tmp_path: Path, name: str, flags: tuple[str, ...]
) -> None:
    """Its own partner's connector (or a mistyped agency) has no sandbox double: say so and
    how to check it instead, rather than fail every check on the sandbox's 404s."""
    spec = example("tax")
    spec["name"] = name
    spec["base_url"] = f"http://127.0.0.1:9/{name}"
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")

    result = hedui("connector", "test", name, "--spec", str(path), *flags)

    assert result.exit_code == 1, result.output
    assert "no sandbox agency is named" in result.output
    assert "--recording FILE" in result.output
    assert "checks failed" not in result.output


@pytest.mark.parametrize("option", ["--spec", "--recording"])
def test_a_file_nested_too_deep_is_a_line_not_a_traceback(tmp_path: Path, option: str) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    extra = ("--spec", str(EXAMPLES / "tax.json")) if option == "--recording" else ()

    result = hedui("connector", "test", "tax", *extra, option, str(deep))

    assert result.exit_code == 1, result.output
    assert "not a readable JSON file (RecursionError)" in result.output
    assert not isinstance(result.exception, RecursionError)


def test_an_unknown_connector_is_an_error() -> None:
    result = hedui("connector", "test", "nope")

    assert result.exit_code != 0
    assert "nope" in result.output


async def test_a_registered_declarative_connector_is_read_from_the_database(
    api_client: ClientFactory, live_service: LiveService, monkeypatch: pytest.MonkeyPatch
) -> None:
    integrator = await api_client(role="integrator", region="00")
    spec: dict[str, Any] = example("business", f"{live_service.base_url}/sandbox")
    spec["name"] = "business_cli"
    assert (await integrator.post("/v1/connectors", json=spec)).status_code == 201
    monkeypatch.setenv("HEDUI_DATABASE_URL", live_service.settings.database_url)

    result = await asyncio.to_thread(hedui, "connector", "test", "business_cli")

    assert result.exit_code == 0, result.output
    assert "business_cli 1" in result.output
    assert "all 10 checks passed" in result.output
