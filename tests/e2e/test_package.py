"""hedui as a release ships it: a wheel built from the source, installed away from the tree.

The wheel goes into a fresh virtual environment with `--no-deps`; the dependencies come from
this test environment's site-packages (a path entry, so this environment's editable hedui is
not seen). The commands run outside the source tree, so only the wheel's files can answer.
"""

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import time
import venv
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory

from service.db import alembic_config

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "*.db", "*.db-*", "__pycache__", ".*_cache", ".hypothesis", "build",
    "dist", "*.egg-info", "tests", "bench",
)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh environment holding only the built wheel."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    built = _run(
        sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"),
        str(source), cwd=work,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (work / "dist").glob("hedui-*.whl")

    target = work / "venv"
    venv.create(target, with_pip=False)
    target_python = target / "bin" / "python"
    site = Path(
        _run(
            str(target_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    (site / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = (
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(target_python),
        "--disable-pip-version-check",
    )
    installed = _run(*pip, "install", "--quiet", "--no-deps", str(wheel), cwd=work)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return target / "bin"


def _run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(  # noqa: S603 - the interpreter, pip and hedui, with our arguments
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _env(database: Path, **extra: str) -> dict[str, str]:
    base = {
        key: value for key, value in os.environ.items() if not key.startswith(("HEDUI_", "PYTHON"))
    }
    return {**base, "HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{database}", **extra}


def _head() -> str:
    (head,) = ScriptDirectory.from_config(alembic_config()).get_heads()
    return head


def _revision(database: Path) -> str:
    with closing(sqlite3.connect(database)) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(revision)


def test_the_wheel_carries_its_code_and_migrations(installed: Path, tmp_path: Path) -> None:
    where = _run(
        str(installed / "python"), "-c",
        "import service, hedui_migrations; print(service.__file__); "
        "print(*hedui_migrations.__path__)",
        cwd=tmp_path,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed.parent), where.stdout


def test_db_upgrade_from_the_wheel_migrates_a_new_database(installed: Path, tmp_path: Path) -> None:
    database = tmp_path / "hedui.db"
    upgraded = _run(str(installed / "hedui"), "db", "upgrade", cwd=tmp_path, env=_env(database))
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert _revision(database) == _head()


def test_serve_from_the_wheel_migrates_and_answers(installed: Path, tmp_path: Path) -> None:
    database = tmp_path / "served.db"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _env(database, HEDUI_PORT=str(port), HEDUI_SANDBOX_DATA=str(tmp_path / "sandbox.db"))
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(  # noqa: S603 - our own freshly installed command
            [str(installed / "hedui"), "serve"], cwd=tmp_path, env=env, stdout=output, stderr=output
        )
    try:
        health = None
        for _ in range(600):
            if server.poll() is not None:
                break
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert health is not None, log.read_text()
        assert health.json() == {"status": "ok", "database": "up"}
        assert _revision(database) == _head()
        key = _run(
            str(installed / "hedui"), "apikey", "create", "--role", "caseworker", "--region",
            "53", cwd=tmp_path, env=env,
        )  # fmt: skip
        assert key.returncode == 0, key.stderr
        assert key.stdout.strip().splitlines()[-1].startswith("hd_")
        # The dashboard's templates and script travel in the wheel too.
        login = httpx.get(f"http://127.0.0.1:{port}/dashboard", timeout=5)
        assert '<form class="login"' in login.text
        script = httpx.get(f"http://127.0.0.1:{port}/dashboard/static/dashboard.js", timeout=5)
        assert script.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
