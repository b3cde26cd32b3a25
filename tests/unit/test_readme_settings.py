"""The README's settings table against the settings the code reads: every `HEDUI_*` variable
of the Settings class and of the command line is listed, none that no longer exists, each
with its real default and a meaning."""

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from connectors.declarative.spec import SECRET_ENV_PREFIX, SECRETS_DIR_ENV
from service.cli import app
from service.config import Settings

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Settings (`HEDUI_*` environment variables)"
PREFIX = Settings.model_config.get("env_prefix", "")


def _table() -> dict[str, tuple[list[str], str, str]]:
    """Each variable of the table: (the variables of its row, the default cell, the meaning)."""
    section = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n#", 1)[0]
    rows: dict[str, tuple[list[str], str, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("| `") or len(cells) != 3:
            continue
        names = re.findall(r"`(HEDUI_[A-Z0-9_]+\*?)`", cells[0])
        for name in names:
            assert name not in rows, f"{name} has two rows"
            rows[name] = (names, cells[1], cells[2])
    return rows


def _cli_options() -> dict[str, list[Any]]:
    """Every environment variable a command-line option reads, with the option's defaults."""
    found: dict[str, list[Any]] = {}

    def walk(command: Any) -> None:
        for param in command.params:
            envvars = [param.envvar] if isinstance(param.envvar, str) else param.envvar or []
            for envvar in envvars:
                found.setdefault(envvar, []).append(param.default)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return found


def _settings_variables() -> dict[str, str]:
    return {PREFIX + name.upper(): name for name in Settings.model_fields}


def test_every_setting_is_in_the_table_and_nothing_else() -> None:
    """Settings fields, command-line variables and the connector secrets (as a pattern)."""
    read = (
        set(_settings_variables())
        | {name for name in _cli_options() if name.startswith(PREFIX)}
        | {f"{SECRET_ENV_PREFIX}*", SECRETS_DIR_ENV}
    )
    listed = set(_table())

    missing, stale = sorted(read - listed), sorted(listed - read)
    assert not missing, f"settings missing from the README's table: {missing}"
    assert not stale, f"README rows for settings the code does not read: {stale}"


def test_every_row_says_what_its_settings_mean() -> None:
    for name, (_, default, meaning) in _table().items():
        assert default, f"{name} has no default in the README's table"
        assert len(meaning) > 10, f"{name} has no meaning in the README's table"


def test_every_setting_has_a_description() -> None:
    """The table's meanings are taken from these: a field without one is a gap in both."""
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_the_defaults_in_the_table_are_the_settings_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A row's n-th quoted default, set as its n-th variable, is that setting's default. A
    setting without one (none, or derived from others) is checked by name only."""
    for name in [*_settings_variables(), *_cli_options()]:
        monkeypatch.delenv(name, raising=False)
    table = _table()
    wrong = []
    for variable, field_name in _settings_variables().items():
        default = Settings.model_fields[field_name].get_default(call_default_factory=True)
        if default is None or default == "" or variable not in table:
            continue  # no default to show, or not listed (the test above says so)
        names, cell, _ = table[variable]
        shown = re.findall(r"`([^`]*)`", cell)
        position = names.index(variable)
        if position >= len(shown):
            wrong.append(f"{variable}: no default in {cell!r}")
            continue
        with monkeypatch.context() as env:
            env.setenv(variable, shown[position])
            value = getattr(Settings(_env_file=None), field_name)
        if value != default:
            wrong.append(f"{variable}: the README says {shown[position]!r}, it is {default!r}")

    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("variable", "default"),
    sorted(
        (name, default)
        for name, defaults in _cli_options().items()
        for default in defaults
        if default is not None
    ),
)
def test_the_table_gives_a_command_line_options_default(variable: str, default: object) -> None:
    """`hedui worker`'s own concurrency, the metrics host: as `--help` shows them."""
    _, cell, _ = _table().get(variable, ([], "", ""))

    assert f"`{default}`" in cell, f"the README does not give {variable} the default {default}"
