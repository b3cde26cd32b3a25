"""Every `hedui` invocation, `--help` included, pays for what loading the command line
imports: the heavy libraries load in the commands that use them, and the runtime the
commands and workers build does not load the API's framework."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def imported(module: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of `candidates` importing `module` loads, in a fresh interpreter."""
    code = f"import sys, {module}; print(*[name for name in {candidates!r} if name in sys.modules])"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


@pytest.mark.parametrize(
    ("module", "not_imported"),
    [
        pytest.param(
            "service.cli",
            (
                "fastapi",
                "starlette",
                "alembic",  # migrations and the schema check (service.db)
                "sqlalchemy",  # the commands that open the database
                "service.models",
                "service.policy",  # the catalog and the scorer (the runtime's)
                "httpx",  # verify and batch, which call the API
                "aiohttp",
            ),
            id="command-line",
        ),
        pytest.param("service.runtime", ("fastapi", "starlette"), id="runtime"),
    ],
)
def test_loading_imports_none_of_the_heavy_modules(
    module: str, not_imported: tuple[str, ...]
) -> None:
    assert imported(module, not_imported) == []
