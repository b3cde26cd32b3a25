"""`hedui --help` and its commands' help: a flag takes no value, so it shows none."""

import pytest
from typer.testing import CliRunner

from service.cli import app


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["verify"],
        ["sandbox"],
        ["policy", "simulate"],
        ["apikey", "create"],
        ["apikey", "list"],
        ["apikey", "revoke"],
        ["serve"],
        ["connector", "test"],
        ["connector", "pause"],
        ["connector", "status"],
        ["recheck"],
    ],
)
def test_flags_show_no_value_placeholder(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=80)

    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output
    assert "BOOLEAN" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["apikey", "create"],
        ["apikey", "list"],
        ["apikey", "revoke"],
        ["policy", "simulate"],
        ["db", "upgrade"],
        ["recheck"],
        ["connector", "pause"],
        ["connector", "resume"],
        ["connector", "status"],
    ],
)
def test_commands_that_use_the_database_name_its_setting(command: list[str]) -> None:
    """A newcomer reading --help learns which database a command reads or writes."""
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=80)

    assert result.exit_code == 0, result.output
    assert "HEDUI_DATABASE_URL" in result.output


def test_top_level_help_says_which_commands_change_the_schema() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=80)

    assert "db upgrade" in result.output
    assert "HEDUI_*" in result.output


def test_recheck_help_explains_itself() -> None:
    """What is due, what it does, what it prints, where it reads and writes, examples."""
    result = CliRunner().invoke(app, ["recheck", "--help"], terminal_width=80)

    assert result.exit_code == 0, result.output
    for phrase in (
        "next_recheck_on",
        "GET /v1/warnings",
        "needing new",
        "HEDUI_PARTNER_BASE_URL",
        "HEDUI_TIMEZONE",
        "Examples:",
        "hedui recheck --due --dry-run",
    ):
        assert phrase in result.output, phrase
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_sandbox_help_tells_how_to_inject_faults() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--help"], terminal_width=100)

    assert result.exit_code == 0, result.output
    assert "/faults" in result.output
    assert "down" in result.output
