"""A command's stdout is its output alone: whatever it logs goes to stderr."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import structlog
from service import cli

@cli.app.command("log-and-print")
def log_and_print() -> None:
    structlog.get_logger("somewhere").warning("something_to_say", connector="tax")
    structlog.get_logger("somewhere").info("below_the_level")
    print('{"ok": true}')

cli.run_cli()
"""


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_command_s_log_lines_go_to_stderr_not_into_its_output(fmt: str) -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", SCRIPT, "log-and-print"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HEDUI_LOG_FORMAT": fmt},
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True}
    assert "something_to_say" in done.stderr
    assert "below_the_level" not in done.stderr
    if fmt == "json":
        assert json.loads(done.stderr.strip().splitlines()[-1])["event"] == "something_to_say"
