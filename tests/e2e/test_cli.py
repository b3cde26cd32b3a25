"""The command line as an operator uses it, against the running service."""

import asyncio
import datetime as dt
import getpass
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from rich.cells import cell_len

from tests.conftest import CLIENT_TLS, LiveService, _free_port, running_service, service_settings
from tests.factories import make_id_number, member, verification_body
from tests.loopback import loopback_server
from tests.stored import api_tokens


async def hedui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a thread, so that the service in this event loop keeps answering."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def new_token(database_url: str, role: str, region: str) -> str:
    """A key made as an operator makes one: `hedui apikey create`, in a process of its own."""
    created = await hedui(
        "apikey",
        "create",
        "--role",
        role,
        "--region",
        region,
        env={"HEDUI_DATABASE_URL": database_url},
    )
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


async def stored_token(database_url: str, role: str, region: str) -> str:
    """A key for a test about something else: stored directly, without starting the CLI
    (a second or more each time, dozens of times a run)."""
    return (await api_tokens(database_url, role, region=region))[role]


async def test_apikey_then_verify_prints_the_report(
    live_service: LiveService, http: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = await new_token(database_url, "caseworker", "53")
    assert token.startswith("hd_")

    applicant = make_id_number("530103")
    await http.post("/sandbox/people", json={"id_number": applicant})
    request = tmp_path / "household.json"
    request.write_text(
        json.dumps(verification_body([member(applicant, declared=100)], region_code="530103")),
        encoding="utf-8",
    )
    env = {"HEDUI_URL": live_service.base_url, "HEDUI_TOKEN": token}

    verified = await hedui("verify", str(request), "--json", "--idempotency-key", "k1", env=env)
    again = await hedui("verify", str(request), "--json", "--idempotency-key", "k1", env=env)
    recheck = await hedui("verify", str(request), "--json", env=env)

    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["recommendation"] == "eligible"
    assert report["benefit"]["monthly_amount"] == "540.00"
    # The same key is the same verification; without one, a re-check is a new verification.
    assert json.loads(again.stdout)["verification_id"] == report["verification_id"]
    assert json.loads(recheck.stdout)["verification_id"] != report["verification_id"]
    assert applicant not in verified.stdout + verified.stderr


@pytest.mark.parametrize("key", [None, "k-slow"])
async def test_verify_that_outlasts_its_timeout_says_what_running_it_again_does(
    live_service: LiveService,
    http: httpx.AsyncClient,
    database_url: str,
    tmp_path: Path,
    key: str | None,
) -> None:
    """Without an idempotency key a repeat is a new verification, asking every partner
    again: the hint says so, and how a key would have made it continue."""
    token = await stored_token(database_url, "caseworker", "53")
    applicant = make_id_number("530103")
    request = tmp_path / "household.json"
    request.write_text(
        json.dumps(verification_body([member(applicant)], region_code="530103")),
        encoding="utf-8",
    )
    env = {"HEDUI_URL": live_service.base_url, "HEDUI_TOKEN": token}
    keyed = ["--idempotency-key", key] if key else []
    slow = await http.put("/sandbox/faults/bank", json={"mode": "ok", "processing_ms": 40_000})
    assert slow.status_code == 200, slow.text
    try:
        done = await hedui("verify", str(request), "--timeout", "1", *keyed, env=env)
    finally:
        await http.delete("/sandbox/faults/bank")

    assert done.returncode == 3, done.stderr
    said = " ".join(done.stderr.split())
    assert "is still running" in said
    assert "without it, a new verification asks every partner again" in said
    # The key to continue with: the one given, or the one the command sent of its own.
    named = re.search(r"--idempotency-key (\S+) continues with it", said)
    assert named is not None, said
    if key:
        assert named.group(1) == key
    else:
        assert named.group(1).startswith("cli-")
    # Its polling is not the trail's business: the report was read once, at the end.
    verification = re.search(r"verification (\S+) is still running", said)
    assert verification is not None
    auditor = await stored_token(database_url, "auditor", "53")
    trail = await http.get(
        "/v1/audit",
        params={"object_id": verification.group(1), "action": "report.read"},
        headers={"Authorization": f"Bearer {auditor}"},
    )
    assert trail.status_code == 200, trail.text
    assert len(trail.json()["items"]) == 1


async def test_verify_queued_for_no_worker_says_so_not_still_running(
    own_database_url: str, tmp_path: Path
) -> None:
    """HEDUI_RUN_MODE=queue with no `hedui worker`: nothing runs it, and "still running"
    sent the reader looking at the partners."""
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", run_mode="queue")
    token = await stored_token(own_database_url, "caseworker", "53")
    request = tmp_path / "household.json"
    request.write_text(
        json.dumps(verification_body([member(make_id_number("530103"))], region_code="530103")),
        encoding="utf-8",
    )
    async with running_service(settings) as service:
        env = {"HEDUI_URL": service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "80"}
        done = await hedui("verify", str(request), "--timeout", "2", env=env)
        said = " ".join(done.stderr.split())
        verification = re.search(r"verification (\S+) is still queued", said)
        assert verification is not None, said
        async with httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=CLIENT_TLS,
        ) as client:
            read = await client.get(f"/v1/verifications/{verification.group(1)}")

    assert done.returncode == 3, done.stderr
    assert read.json()["status"] == "queued"
    assert "no worker has taken it yet (is `hedui worker` running?)" in said
    assert "still running" not in said
    assert re.search(r"--idempotency-key cli-\S+ continues with it", said), said
    assert "Traceback" not in said


async def test_apikey_lifecycle_create_list_revoke(
    live_service: LiveService, database_url: str
) -> None:
    """A named key with its own expiry works; `revoke` takes the id prefix `list` shows;
    `list` shows whose key it was and why it was revoked, never a token."""
    env = {"HEDUI_DATABASE_URL": database_url, "COLUMNS": "160"}
    holder = f"Zhang caseworker, Kunming Wuhua {os.getpid()}"
    created = await hedui(
        "apikey", "create", "--role", "caseworker", "--region", "530102",
        "--name", holder, "--expires-in", "2w", env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    key_id = created.stdout.split()[2]
    assert f"for '{holder}'" in created.stdout
    async with httpx.AsyncClient(
        base_url=live_service.base_url,
        headers={"Authorization": f"Bearer {token}"},
        verify=CLIENT_TLS,
    ) as client:
        assert (await client.get("/v1/verifications")).status_code == 200

    revoked = await hedui("apikey", "revoke", key_id[:8], "--reason", "left the office", env=env)
    table = await hedui("apikey", "list", "--status", "revoked", "--name", holder, env=env)

    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked key {key_id} ({holder})" in revoked.stdout
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(key_id[:8]))
    assert holder in row
    assert "revoked" in row.split()[-1]
    assert "left the office" in table.stdout
    expires = dt.date.today() + dt.timedelta(weeks=2)
    assert expires.isoformat() in row or (expires + dt.timedelta(days=1)).isoformat() in row
    for output in (created.stdout.rsplit("\n", 2)[0], revoked.stdout, table.stdout):
        assert token not in output


async def test_an_every_region_key_lists_as_it_was_given(database_url: str) -> None:
    """`--region 00` is listed as `00` (`--json`, as `GET /v1/apikeys`), `all` in the
    table: never the empty prefix it is stored as."""
    env = {"HEDUI_DATABASE_URL": database_url, "COLUMNS": "160"}
    holder = f"provincial admin {os.getpid()}"
    created = await hedui(
        "apikey", "create", "--role", "admin", "--region", "00", "--name", holder, env=env
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    listed = await hedui("apikey", "list", "--json", "--name", holder, env=env)
    table = await hedui("apikey", "list", "--name", holder, env=env)

    assert listed.returncode == 0, listed.stderr
    (key,) = (json.loads(line) for line in listed.stdout.splitlines())
    assert key["region"] == "00"
    row = next(line for line in table.stdout.splitlines() if holder in line)
    assert " all " in row
    # And as shown, so filtered: --region 00 lists it (every region narrows nothing).
    filtered = await hedui("apikey", "list", "--json", "--region", "00", "--name", holder, env=env)
    assert filtered.returncode == 0, filtered.stderr
    assert [json.loads(line)["region"] for line in filtered.stdout.splitlines()] == ["00"]


async def test_verify_explains_an_unreachable_service(tmp_path: Path) -> None:
    request = tmp_path / "household.json"
    request.write_text(json.dumps(verification_body([member(make_id_number())])), encoding="utf-8")
    result = await hedui(
        "verify", str(request), env={"HEDUI_URL": "http://127.0.0.1:9", "HEDUI_TOKEN": "hd_x"}
    )
    assert result.returncode == 2
    assert "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "token", "said"),
    [
        ("[" * 100_000 + "]" * 100_000, "hd_x", "JSON nested too deeply"),
        ('{"reference": "a", "reference": "b"}', "hd_x", "a member named twice: 'reference'"),
        ("{", "hd_x", "is not JSON"),
        ("{}", "hd_密钥", "an API key is printable ASCII"),
    ],
    ids=["nested deep", "a member twice", "not json", "a non-ASCII key"],
)
async def test_verify_refuses_what_the_server_would_with_a_line_not_a_traceback(
    tmp_path: Path, content: str, token: str, said: str
) -> None:
    """A file the server would refuse is refused here, and nothing is sent: a second member
    of one name was kept silently, a deep file and a non-ASCII key were tracebacks."""
    request = tmp_path / "household.json"
    request.write_text(content, encoding="utf-8")
    result = await hedui(
        "verify", str(request), env={"HEDUI_URL": "http://127.0.0.1:9", "HEDUI_TOKEN": token}
    )
    assert result.returncode == 2, result.stderr
    assert said in " ".join(result.stderr.split())
    assert "cannot reach" not in result.stderr  # refused before anything was sent
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [("verify",), ("batch", "submit")])
async def test_without_hedui_url_the_client_commands_call_hedui_port(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    request = tmp_path / "household.json"
    request.write_text(json.dumps(verification_body([member(make_id_number())])), encoding="utf-8")
    env = {"HEDUI_PORT": "9", "HEDUI_TOKEN": "hd_x", "HEDUI_URL": ""}

    result = await hedui(*command, str(request), env=env)

    assert result.returncode != 0
    assert "cannot reach http://127.0.0.1:9" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


async def test_a_setting_out_of_bounds_is_one_line_naming_it_not_a_traceback(
    tmp_path: Path,
) -> None:
    secret = "not-a-valid-kek-but-secret"
    for command in (["serve"], ["apikey", "list"]):
        done = await hedui(
            *command,
            env={
                "HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                "HEDUI_SETTLE_WINDOW_S": "9",
                "HEDUI_RUN_LEASE_S": "soon",
                "HEDUI_KEK": secret,
            },
        )
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert (
            "hedui: HEDUI_SETTLE_WINDOW_S: Input should be less than or equal to 5" in done.stderr
        )
        assert "hedui: HEDUI_RUN_LEASE_S: Input should be a valid number" in done.stderr
        assert "soon" not in done.stderr
        assert secret not in done.stderr + done.stdout


async def test_a_bad_policy_file_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    policies = tmp_path / "policy"
    policies.mkdir()
    (policies / "530102.toml").write_text(
        '[[versions]]\nprogram = "dibao"\narea = "urban"\neffective_from = 2020-06-01\n'
        'monthly_standard = "abc"\n',
        encoding="utf-8",
    )
    env = {
        "HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "HEDUI_POLICY_DIR": str(policies),
        "HEDUI_PORT": str(_free_port()),
    }
    for command in (
        ["serve"],
        [
            "policy",
            "simulate",
            "--program",
            "dibao",
            "--area",
            "urban",
            "--set",
            "monthly_standard=700",
        ],
    ):
        done = await hedui(*command, env=env)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [
            "hedui: policy file 530102.toml: versions[0].monthly_standard: an amount in yuan, "
            "digits with at most two decimals: 412.50"
        ]


async def test_a_broken_connector_plugin_is_one_line_naming_its_entry_point(
    tmp_path: Path,
) -> None:
    """An installed plugin whose entry point's name is not its connector's: `serve` and
    `worker` stop at start-up with the entry point and why, not a traceback."""
    (tmp_path / "hedui_misnamed.py").write_text(
        "from connectors.vehicles import VehiclesConnector\n\n\n"
        "class Misnamed(VehiclesConnector):\n"
        '    name = "business_registry"\n',
        encoding="utf-8",
    )
    dist = tmp_path / "hedui_misnamed-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hedui-misnamed\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        "[hedui.connectors]\nbusiness_reg = hedui_misnamed:Misnamed\n"
    )
    env = {
        "HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "HEDUI_PORT": str(_free_port()),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    for command in (["serve"], ["worker"]):
        done = await hedui(*command, env=env)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        # (A first start on a new database also says where it made the key file.)
        line = done.stderr.strip().splitlines()[-1]
        assert line.startswith("hedui: connector entry point 'business_reg': "), line
        assert "business_registry" in line


async def test_policy_simulate_reads_the_database(
    live_service: LiveService, http: httpx.AsyncClient, database_url: str
) -> None:
    """Re-scores what the service stored; the region is this test's own, so counts are exact."""
    region = "530113"
    token = await stored_token(database_url, "caseworker", region)
    applicant = make_id_number(region)
    await http.post("/sandbox/people", json={"id_number": applicant})
    async with httpx.AsyncClient(
        base_url=live_service.base_url,
        headers={"Authorization": f"Bearer {token}"},
        verify=CLIENT_TLS,
    ) as client:
        response = await client.post(
            "/v1/verifications",
            json=verification_body([member(applicant, declared=100)], region_code=region),
            headers={"Prefer": "wait=10"},
        )
    assert response.json()["recommendation"] == "eligible"

    result = await hedui(
        "policy",
        "simulate",
        "--region",
        region,
        "--program",
        "dibao",
        "--area",
        "urban",
        "--set",
        "monthly_standard=700",
        "--json",
        env={"HEDUI_DATABASE_URL": database_url},
    )

    assert result.returncode == 0, result.stderr
    simulation = json.loads(result.stdout)
    assert simulation["verifications"] == 1
    assert simulation["changed"] == 0
    assert simulation["monthly_benefit_delta"] == "60.00"  # (700-100) - (640-100)


async def test_policy_simulate_names_a_wrong_figure(database_url: str) -> None:
    result = await hedui(
        "policy",
        "simulate",
        "--program",
        "dibao",
        "--area",
        "urban",
        "--set",
        "monthly_standrad=700",
        env={"HEDUI_DATABASE_URL": database_url},
    )
    assert result.returncode == 1
    assert "monthly_standrad" in result.stderr


async def test_policy_simulate_names_a_wrong_value_by_the_option_typed(database_url: str) -> None:
    """The service's place for it (`body.overrides.monthly_standard`) is not what was typed."""
    result = await hedui(
        "policy", "simulate", "--program", "dibao", "--area", "urban",
        "--set", "monthly_standard=abc",
        env={"HEDUI_DATABASE_URL": database_url, "COLUMNS": "80"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    said = result.stderr.splitlines()
    assert len(said) == 1, said
    assert said[0].startswith("--set monthly_standard: an amount in yuan"), said
    assert "body" not in said[0]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--set", "monthly_standard=700", "--set", "monthly_standard=800"], "more than once"),
        (["--region", "5", "--set", "monthly_standard=700"], "2, 4 or 6 digits"),
    ],
    ids=["figure-twice", "region"],
)
async def test_policy_simulate_refuses_a_figure_twice_and_names_the_option(
    tmp_path: Path, arguments: list[str], said: str
) -> None:
    """Refused before the database is opened, naming the option, with no pydantic dump."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    result = await hedui(
        "policy", "simulate", "--program", "dibao", "--area", "urban", *arguments,
        env={"HEDUI_DATABASE_URL": url, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert "pydantic" not in result.stderr


class TestCommandsDoNotMigrate:
    """Only `hedui serve` and `hedui db upgrade` change the schema; the others refuse."""

    async def test_apikey_create_refuses_an_empty_database(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        result = await hedui(
            "apikey", "create", "--role", "caseworker", "--region", "53",
            env={"HEDUI_DATABASE_URL": url},
        )  # fmt: skip
        assert result.returncode == 1
        assert "hedui db upgrade" in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "fresh.db").exists()  # no empty file left for a later serve

    async def test_apikey_create_refuses_an_unmigrated_database(self, tmp_path: Path) -> None:
        (tmp_path / "empty.db").touch()
        url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        result = await hedui(
            "apikey", "create", "--role", "caseworker", "--region", "53",
            env={"HEDUI_DATABASE_URL": url},
        )  # fmt: skip
        assert result.returncode == 1
        assert "no hedui schema yet" in result.stderr
        assert "hedui db upgrade" in result.stderr
        assert _tables(tmp_path / "empty.db") == set()

    async def test_commands_refuse_a_database_behind_and_work_after_db_upgrade(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "behind.db"
        env = {"HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
        first = await hedui("db", "upgrade", "0001", env=env)
        assert first.returncode == 0, first.stderr
        simulate = ("policy", "simulate", "--program", "dibao", "--area", "urban")
        new_key = ("apikey", "create", "--role", "auditor", "--region", "53")

        refused_key = await hedui(*new_key, env=env)
        refused_simulation = await hedui(*simulate, "--set", "monthly_standard=700", env=env)
        revision_before = _revision(path)
        upgraded = await hedui("db", "upgrade", env=env)
        created = await hedui(*new_key, env=env)

        for refused in (refused_key, refused_simulation):
            assert refused.returncode == 1
            assert "behind" in refused.stderr
            assert "hedui db upgrade" in refused.stderr
            assert "Traceback" not in refused.stderr
        assert revision_before == "0001"
        assert upgraded.returncode == 0, upgraded.stderr
        assert created.returncode == 0, created.stderr
        assert created.stdout.strip().splitlines()[-1].startswith("hd_")


class TestDbCurrent:
    """`hedui db current` says where the schema stands, for a deployment script to check."""

    async def test_behind_then_current(self, tmp_path: Path) -> None:
        env = {"HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hedui.db'}"}
        assert (await hedui("db", "upgrade", "0001", env=env)).returncode == 0
        behind = await hedui("db", "current", env=env)
        upgraded = await hedui("db", "upgrade", env=env)
        current = await hedui("db", "current", env=env)

        assert behind.returncode == 1
        assert "at:       0001" in behind.stdout
        assert "behind" in behind.stderr
        assert "hedui db upgrade" in behind.stderr
        head = current.stdout.split("hedui:")[1].split()[0]
        assert upgraded.stdout.strip() == f"database at revision {head}"
        assert current.returncode == 0, current.stderr
        assert f"at:       {head}" in current.stdout
        assert current.stdout.strip().endswith("current")

    async def test_no_database_is_an_error_and_creates_none(self, tmp_path: Path) -> None:
        env = {"HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"}
        result = await hedui("db", "current", env=env)
        assert result.returncode == 1
        assert "there is no database" in result.stderr
        assert not (tmp_path / "none.db").exists()

    async def test_db_upgrade_refuses_to_go_down_or_to_an_unknown_revision(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "hedui.db"
        env = {"HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
        assert (await hedui("db", "upgrade", "0002", env=env)).returncode == 0
        down = await hedui("db", "upgrade", "0001", env=env)
        unknown = await hedui("db", "upgrade", "nosuch", env=env)

        assert down.returncode == 1
        assert "past 0001" in down.stderr
        assert unknown.returncode == 1
        assert "cannot upgrade to 'nosuch'" in unknown.stderr
        for refused in (down, unknown):
            assert "Traceback" not in refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1
        assert _revision(path) == "0002"


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def _revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(revision)


async def test_serve_on_a_port_in_use_fails_in_one_line_before_anything_starts(
    tmp_path: Path,
) -> None:
    database = tmp_path / "hedui.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await hedui(
            "serve", "--port", str(port),
            env={"HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
        )  # fmt: skip

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"127.0.0.1:{port}" in line
    assert "already in use" in line
    assert "HEDUI_PORT" in line
    assert "hedui_ready" not in result.stdout + result.stderr
    assert not database.exists()  # nothing was started: no migration, no lifespan


async def test_verify_shows_a_linshi_one_off_payment_at_80_columns_in_either_language(
    live_service: LiveService, http: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """临时救助, 2 members, 200 income: (640 × 2 − 200) × 3 months = 3240.00, paid once."""
    token = await stored_token(database_url, "caseworker", "53")
    applicant, spouse = make_id_number("530103"), make_id_number("530103")
    for person in (applicant, spouse):
        await http.post("/sandbox/people", json={"id_number": person})
    members = [member(applicant, declared=200), member(spouse, "李四", "spouse", declared=0)]
    request = tmp_path / "linshi.json"
    request.write_text(
        json.dumps(verification_body(members, region_code="530103", program="linshi")),
        encoding="utf-8",
    )
    env = {"HEDUI_URL": live_service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "80"}

    english = await hedui("verify", str(request), "--lang", "en", "--idempotency-key", "l", env=env)
    chinese = await hedui("verify", str(request), "--lang", "zh", "--idempotency-key", "l", env=env)
    from_locale = await hedui(
        "verify", str(request), "--idempotency-key", "l", env={**env, "LANG": "zh_CN.UTF-8"}
    )

    assert english.returncode == 0, english.stderr
    lines = english.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.split()[:3] == ["one-off", "payment", "3240.00"] for line in lines)
    assert "monthly benefit" not in english.stdout
    assert "One-off: (640.00 × 2" in english.stdout  # the basis, in English
    assert chinese.returncode == 0, chinese.stderr
    # A Chinese character takes two columns: the width is counted in terminal cells.
    assert max(cell_len(line) for line in chinese.stdout.splitlines()) <= 80
    assert any(
        line.split()[:2] == ["一次性救助金", "3240.00"] for line in chinese.stdout.splitlines()
    )
    assert "一次性救助：" in chinese.stdout
    assert "每月救助金" not in chinese.stdout
    assert "一次性救助金" in from_locale.stdout


async def test_verify_says_which_partners_it_waits_for(
    live_service: LiveService, http: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """A slow partner: while the report is not there, standard error says who has answered
    and whom it waits for (the report itself still goes to standard output)."""
    token = await stored_token(database_url, "caseworker", "53")
    applicant = make_id_number("530103")
    await http.post("/sandbox/people", json={"id_number": applicant})
    request = tmp_path / "household.json"
    request.write_text(
        json.dumps(verification_body([member(applicant)], region_code="530103")),
        encoding="utf-8",
    )
    env = {
        "HEDUI_URL": live_service.base_url,
        "HEDUI_TOKEN": token,
        "TTY_INTERACTIVE": "1",  # rich shows its status line as on a terminal
        "TTY_COMPATIBLE": "1",
        "COLUMNS": "200",
    }
    await http.put("/sandbox/faults/pensions", json={"mode": "ok", "latency_ms": 1000})
    try:
        verified = await hedui("verify", str(request), "--json", env=env)
    finally:
        await http.delete("/sandbox/faults/pensions")

    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["complete"] is True
    # Each status line as rich redraws it (a spinner, then the text).
    assert re.search(r"\d of 6 partners answered; waiting for [a-z_, ]*pensions", verified.stderr)
    assert applicant not in verified.stderr


async def test_with_json_logs_every_line_of_a_first_start_is_json(tmp_path: Path) -> None:
    """The key file created on first start was logged before logging was set up: one line
    of console text ahead of the JSON that a log pipeline reads."""
    env = {
        **os.environ,
        "HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'first.db'}",
        "HEDUI_LOG_FORMAT": "json",
        "HEDUI_PORT": str(port := _free_port()),
        # As the image serves: on every interface (the sandbox off, and said so).
        "HEDUI_HOST": "0.0.0.0",  # noqa: S104 - the test's own server, stopped at its end
    }
    env.pop("HEDUI_KEY_FILE")  # the key file beside a new database: created, and said so
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while line := (await process.stdout.readline()).decode():
                lines.append(line)
                if "hedui_ready" in line:
                    break
    finally:
        process.terminate()
        await process.wait()
    assert any("key_file_created" in line for line in lines), lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    ready = next(json.loads(line) for line in lines if "hedui_ready" in line)
    # Where to open the docs from this machine, not the address it binds.
    assert ready["docs"] == f"http://127.0.0.1:{port}/docs"


async def test_verify_waits_for_a_service_restarting_and_submits_once(
    live_service: LiveService, database_url: str, tmp_path: Path
) -> None:
    """The service answers the submission 503 for a moment (an API process restarting),
    then serves again: `verify` sends it again under the same Idempotency-Key, after the
    `Retry-After`, and prints the report of the one verification made."""
    token = await stored_token(database_url, "caseworker", "53")
    request = tmp_path / "household.json"
    request.write_text(
        json.dumps(verification_body([member(make_id_number("530103"))], region_code="530103")),
        encoding="utf-8",
    )
    keys: list[str] = []

    async def restarting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, path, _ = head[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in head[1:] if line)
        lowered = {name.lower(): value for name, value in headers.items()}
        body = await reader.readexactly(int(lowered.get("content-length", "0")))
        if method == "POST":
            keys.append(lowered.get("idempotency-key", ""))
        if method == "POST" and len(keys) == 1:
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0.2\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        else:
            async with httpx.AsyncClient(
                base_url=live_service.base_url, verify=CLIENT_TLS
            ) as client:
                forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host",)}
                answer = await client.request(method, path, headers=forwarded, content=body)
            writer.write(
                f"HTTP/1.1 {answer.status_code} X\r\nContent-Type: "
                f"{answer.headers.get('content-type', 'application/json')}\r\n"
                f"Content-Length: {len(answer.content)}\r\nConnection: close\r\n\r\n".encode()
                + answer.content
            )
        await writer.drain()
        writer.close()

    async with loopback_server(restarting) as url:
        done = await hedui(
            "verify", str(request), "--json", env={"HEDUI_URL": url, "HEDUI_TOKEN": token}
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verification_id"]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert keys[0].startswith("cli-")


async def test_policy_simulate_is_recorded_in_the_audit_trail(tmp_path: Path) -> None:
    """It reads every stored report of the region, as `POST /v1/policy/simulate` does."""
    env = {"HEDUI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hedui.db'}"}
    assert (await hedui("db", "upgrade", env=env)).returncode == 0
    simulated = await hedui(
        "policy", "simulate", "--program", "dibao", "--area", "urban", "--region", "5301",
        "--set", "monthly_standard=700", env=env,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    with sqlite3.connect(tmp_path / "hedui.db") as db:
        rows = db.execute(
            "SELECT actor_name, object_type, detail FROM audit_events "
            "WHERE action = 'policy.simulate'"
        ).fetchall()
    [(actor, object_type, detail)] = rows
    assert (actor, object_type) == (f"cli:{getpass.getuser()}", "simulation")
    assert detail.startswith("region 5301, dibao urban, 0 households")
