"""Which way imports go (the style guide's rules, checked on every module's source):
`schemas/` imports nothing of ours; `connectors/` imports `schemas/` and itself only;
`sandbox/` (the outside world) nothing of `service/` or `connectors/`; the rules
(`service/policy/rules/`) `schemas/`, the facts they read and the findings they
return only: no database, no HTTP, nothing of the service around them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("schemas", "connectors", "sandbox", "service")
ALLOWED = {
    "schemas": ("schemas",),
    "connectors": ("schemas", "connectors"),
    "sandbox": ("sandbox", "schemas"),
    "service/policy/rules": (
        "schemas",
        "service.policy.rules",
        "service.policy.facts",
        "service.policy.findings",
    ),
}


def imported(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a module of ours in `source`, a module of
    `package`; a relative import is named by that package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package if node.level else node.module or ""]
        else:
            continue
        found.extend((node.lineno, name) for name in names if name.split(".")[0] in OURS)
    return found


def modules(area: str) -> list[Path]:
    return sorted((ROOT / area).rglob("*.py"))


@pytest.mark.parametrize("area", sorted(ALLOWED))
def test_imports_go_the_one_way(area: str) -> None:
    assert modules(area), f"{area} has no modules: the check would pass on nothing"
    allowed = ALLOWED[area]
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules(area)
        for line, name in imported(
            path.read_text(encoding="utf-8"), ".".join(path.relative_to(ROOT).parent.parts)
        )
        if not any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)
    ]
    assert wrong == []


def test_the_check_sees_a_wrong_import() -> None:
    """What the check reads: absolute and relative imports of modules of ours, at any
    depth (inside a function too), and no one else's."""
    source = (
        "import json\nfrom service.db import x\nimport connectors.base\nfrom . import y\n"
        "def later():\n    from sandbox import app\n"
    )
    assert imported(source, "schemas") == [
        (2, "service.db"),
        (3, "connectors.base"),
        (4, "schemas"),
        (6, "sandbox"),
    ]
