"""docs/connectors.md's example connector and its tests run exactly as written.

The page's Python blocks that start with a `# <file>.py` line are written out as files, its
entry-point table becomes an installed distribution's entry points, and the example's test
module runs under plain pytest: no pytest-asyncio, no `asyncio_mode`, no project settings.
"""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs" / "connectors.md"
FILE_BLOCK = re.compile(r"```python\n# (?P<name>[\w.]+\.py)\n(?P<code>.*?)```", re.DOTALL)
TOML_BLOCK = re.compile(r"```toml\n(?P<toml>.*?)```", re.DOTALL)


def write_example(directory: Path) -> dict[str, str]:
    """The page's files, and its entry points as an installed distribution's."""
    text = DOCS.read_text(encoding="utf-8")
    files = {match["name"]: match["code"] for match in FILE_BLOCK.finditer(text)}
    for name, code in files.items():
        (directory / name).write_text(code, encoding="utf-8")
    (points,) = (
        tomllib.loads(match["toml"])["project"]["entry-points"]["hedui.connectors"]
        for match in TOML_BLOCK.finditer(text)
    )
    dist = directory / "hedui_business_registry-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hedui-business-registry\nVersion: 0.1.0\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in points.items())
    (dist / "entry_points.txt").write_text(f"[hedui.connectors]\n{lines}")
    return files


def test_the_documented_connector_passes_its_documented_tests(tmp_path: Path) -> None:
    files = write_example(tmp_path)
    assert set(files) == {"hedui_business_registry.py", "test_business_registry.py"}
    (tmp_path / "pytest.ini").write_text("[pytest]\n")

    result = subprocess.run(  # noqa: S603 - this interpreter's pytest, fixed arguments
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:asyncio",  # the suite must not need pytest-asyncio
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "--strict-markers",
            "-W",
            "error",
            "-q",
            "test_business_registry.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(r"\d+ passed in .*", summary), summary
    assert int(summary.split()[0]) >= 30  # the whole suite ran, not a stray test
