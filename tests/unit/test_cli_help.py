"""`hedui --help` and its commands' help: a flag takes no value, so it shows none."""

import pytest
from typer.testing import CliRunner

from service.cli import app


@pytest.mark.parametrize(
    "command",
    [[], ["verify"], ["sandbox"], ["policy", "simulate"], ["apikey", "create"], ["serve"]],
)
def test_flags_show_no_value_placeholder(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=80)

    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output
    assert "BOOLEAN" not in result.output
