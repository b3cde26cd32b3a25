"""`hedui batch submit` survives being killed mid-upload: run again, it continues the same
batch and no household is submitted twice."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import CLIENT_TLS, running_service, service_settings
from tests.factories import make_id_number, member, verification_body
from tests.stored import caseworker_token

LINES = 400


async def _part_sent(
    args: tuple[str, ...], env: dict[str, str], state: Path
) -> asyncio.subprocess.Process:
    """`hedui batch submit` with `args`, once its state file says ten lines were sent (or
    after 15 s, for the test to fail on what it finds)."""
    process = await _cli("submit", *args, env=env)
    for _ in range(3000):
        if _lines_sent(state) >= 10:
            break
        await asyncio.sleep(0.005)
    return process


def _lines_sent(state: Path) -> int:
    sent: int = json.loads(state.read_text())["lines_sent"] if state.exists() else 0
    return sent


async def _cli(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "batch",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def _households(path: Path, prefix: str, refused_line: int | None = None) -> Path:
    """`LINES` one-member households at `path`, referenced `prefix-0`, `prefix-1`...; the
    one on `refused_line` (counted from 1) of a program there is none of."""
    with path.open("w") as out:
        for n in range(LINES):
            body = verification_body([member(make_id_number())], reference=f"{prefix}-{n}")
            if n + 1 == refused_line:
                body["program"] = "unknown"
            out.write(json.dumps(body, ensure_ascii=False) + "\n")
    return path


async def test_submit_resumes_after_being_killed(own_database_url: str, tmp_path: Path) -> None:
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", run_mode="queue")
    households = _households(tmp_path / "recheck.ndjson", "k", refused_line=8)
    state = tmp_path / "recheck.ndjson.hedui-batch.json"

    async with running_service(settings) as service:
        token = await caseworker_token(own_database_url)
        env = {"HEDUI_URL": service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "100"}
        args = (str(households), "--lines-per-request", "5", "--no-wait")

        first = await _part_sent(args, env, state)
        # Killed (SIGKILL: no clean-up) as soon as a few pieces are acknowledged.
        first.send_signal(signal.SIGKILL)
        await first.wait()
        interrupted = json.loads(state.read_text())
        assert 10 <= interrupted["lines_sent"] < LINES
        assert interrupted["closed"] is False

        second = await _cli("submit", *args, env=env)
        output, _ = await second.communicate()
        text = output.decode()
        assert second.returncode == 0, text
        assert f"resuming batch {interrupted['batch_id']}" in text

        async with httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=CLIENT_TLS,
        ) as client:
            batches = (await client.get("/v1/batches")).json()["items"]
            assert [batch["id"] for batch in batches] == [interrupted["batch_id"]]
            batch = batches[0]
            assert batch["status"] == "closed"
            assert (batch["lines_received"], batch["households"], batch["invalid_lines"]) == (
                LINES,
                LINES - 1,
                1,
            )
            errors = (await client.get(f"/v1/batches/{batch['id']}/errors")).json()["items"]
            assert [error["line"] for error in errors] == [8]
            lines = []
            cursor = None
            while True:
                page = (
                    await client.get(
                        f"/v1/batches/{batch['id']}/verifications",
                        params={"limit": 1000, **({"cursor": cursor} if cursor else {})},
                    )
                ).json()
                lines += [item["line"] for item in page["items"]]
                if not (cursor := page["next_cursor"]):
                    break
            assert lines == [n for n in range(1, LINES + 1) if n != 8]

        # A third run finds the batch closed and only reports it.
        third = await _cli("submit", *args, env=env)
        output, _ = await third.communicate()
        assert third.returncode == 0, output.decode()
        said = output.decode()
        assert f"batch {interrupted['batch_id']} was sent whole before" in said
        assert "resuming" not in said


async def test_submit_killed_during_its_first_request_sends_nothing_twice(
    own_database_url: str, tmp_path: Path
) -> None:
    """The first request creates the batch: killed while the server is storing it (no
    answer, so no batch id in the state file), a re-run continues that batch through the
    Idempotency-Key saved before the request, never a second batch."""
    settings = service_settings(
        own_database_url, tmp_path / "sandbox.db", run_mode="queue", batch_chunk=20
    )
    households = _households(tmp_path / "first.ndjson", "f")

    async with running_service(settings) as service:
        token = await caseworker_token(own_database_url)
        env = {"HEDUI_URL": service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "100"}
        args = (str(households), "--lines-per-request", str(LINES), "--no-wait")
        async with httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=CLIENT_TLS,
        ) as client:
            first = await _cli("submit", *args, env=env)
            # Killed while the one request is under way: some chunks stored, no answer yet.
            for _ in range(3000):
                items = (await client.get("/v1/batches")).json()["items"]
                if items and items[0]["lines_received"] > 0:
                    break
                await asyncio.sleep(0.005)
            first.send_signal(signal.SIGKILL)
            await first.wait()

            # The service may still be storing the killed upload's lines: a re-run then is
            # refused (409, nothing stored) and is run again, as the answer says to.
            for _ in range(50):
                second = await _cli("submit", *args, env=env)
                output, _ = await second.communicate()
                if second.returncode != 1 or b"409 Conflict" not in output:
                    break
                await asyncio.sleep(0.1)
            assert second.returncode == 0, output.decode()

            batches = (await client.get("/v1/batches")).json()["items"]
            assert len(batches) == 1, batches
            assert (batches[0]["lines_received"], batches[0]["households"]) == (LINES, LINES)


async def test_a_file_whose_every_line_is_refused_exits_1(
    own_database_url: str, tmp_path: Path
) -> None:
    settings = service_settings(own_database_url, tmp_path / "sandbox.db")
    pretty = tmp_path / "household.json"  # pretty-printed: no line is a household
    pretty.write_text(json.dumps(verification_body([member(make_id_number())]), indent=2))
    async with running_service(settings) as service:
        token = await caseworker_token(own_database_url)
        env = {"HEDUI_URL": service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "100"}

        run = await _cli("submit", str(pretty), "--no-wait", env=env)
        output, _ = await run.communicate()

    assert run.returncode == 1, output.decode()
    assert "every line of" in " ".join(output.decode().split())


async def test_a_file_that_is_no_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    """`/dev/zero` has no end: counting its lines spun for ever."""
    env = {"HEDUI_URL": "http://127.0.0.1:9", "HEDUI_TOKEN": "hd_unused"}
    run = await _cli("submit", "/dev/zero", "--no-wait", env=env)
    output, _ = await asyncio.wait_for(run.communicate(), timeout=60)
    assert run.returncode == 2, output.decode()
    assert "not a regular file" in " ".join(output.decode().split())


async def test_a_damaged_state_file_says_what_to_do(tmp_path: Path) -> None:
    households = tmp_path / "households.ndjson"
    households.write_text(json.dumps(verification_body([member(make_id_number())])) + "\n")
    env = {"HEDUI_URL": "http://127.0.0.1:9", "HEDUI_TOKEN": "hd_unused", "COLUMNS": "200"}
    edited = json.dumps(
        {
            "fingerprint": {},
            "idempotency_key": "hedui-batch-x",
            "batch_id": "../../v1/verifications",  # would send the upload elsewhere
            "lines_sent": 0,
            "closed": False,
        }
    )
    for damaged in ("garbage{", "[]", '{"batch_id": 1}', "\udcff", edited):
        state = tmp_path / "households.ndjson.hedui-batch.json"
        state.write_bytes(damaged.encode("utf-8", "surrogateescape"))
        run = await _cli("submit", str(households), "--no-wait", env=env)
        output, _ = await asyncio.wait_for(run.communicate(), timeout=60)
        text = " ".join(output.decode().split())
        assert run.returncode == 2, text
        assert "--restart" in text
        assert "Traceback" not in text


async def test_status_of_what_is_not_a_batch_id_says_so_and_asks_nobody(tmp_path: Path) -> None:
    """The id goes into the request's path: `../../v1/verifications` printed the
    verifications as if they were the batch, `?x=1#` a traceback."""
    env = {"HEDUI_URL": "http://127.0.0.1:9", "HEDUI_TOKEN": "hd_unused", "COLUMNS": "200"}
    for given in ("../../v1/verifications", "?x=1#", "not-a-uuid"):
        run = await _cli("status", given, "--json", env=env)
        output, _ = await asyncio.wait_for(run.communicate(), timeout=60)
        text = " ".join(output.decode().split())
        assert run.returncode == 2, text
        assert "is not a batch id" in text
        assert "cannot reach" not in text  # nothing was sent


async def _batches(base_url: str, token: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, verify=CLIENT_TLS
    ) as client:
        items: list[dict[str, object]] = (await client.get("/v1/batches")).json()["items"]
        return items


async def test_submit_interrupted_says_its_upload_is_kept_and_a_rerun_continues(
    own_database_url: str, tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT) ended it with status 130 and not a word."""
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", run_mode="queue")
    households = _households(tmp_path / "households.ndjson", "i")
    state = tmp_path / "households.ndjson.hedui-batch.json"

    async with running_service(settings) as service:
        token = await caseworker_token(own_database_url)
        env = {"HEDUI_URL": service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "80"}
        args = (str(households), "--lines-per-request", "5", "--no-wait")

        first = await _part_sent(args, env, state)
        first.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(first.communicate(), timeout=60)
        said = output.decode()
        interrupted = json.loads(state.read_text())

        second = await _cli("submit", *args, env=env)
        again, _ = await asyncio.wait_for(second.communicate(), timeout=120)
        batches = await _batches(service.base_url, token)

    assert first.returncode == 130, said
    assert interrupted["closed"] is False
    last = said.strip().splitlines()[-1]
    assert last == (
        f"interrupted: the upload so far is saved ({state}); running the same command "
        "again continues it"
    ), said
    assert "Traceback" not in said
    assert second.returncode == 0, again.decode()
    assert f"resuming batch {interrupted['batch_id']}" in again.decode()
    assert [(batch["id"], batch["households"]) for batch in batches] == [
        (interrupted["batch_id"], LINES)
    ]


@pytest.mark.parametrize(
    "content", [b"", b"\n\n  \n", b"\xef\xbb\xbf\r\n\t\n"], ids=["empty", "blank", "bom-blank"]
)
async def test_a_file_without_households_is_refused_before_any_batch_is_made(
    own_database_url: str, tmp_path: Path, content: bytes
) -> None:
    """It made an empty batch, closed at once (batch.completed to every webhook), exit 0."""
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", run_mode="queue")
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(content)
    async with running_service(settings) as service:
        token = await caseworker_token(own_database_url)
        env = {"HEDUI_URL": service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "80"}
        run = await _cli("submit", str(empty), env=env)
        output, _ = await asyncio.wait_for(run.communicate(), timeout=60)
        batches = await _batches(service.base_url, token)

    said = output.decode()
    assert run.returncode == 1, said
    assert said.splitlines() == [
        f"{empty} has no households (it is empty or its lines are blank): one JSON object "
        "per line, each the body of POST /v1/verifications"
    ]
    assert batches == []
    assert not (tmp_path / "empty.ndjson.hedui-batch.json").exists()


async def test_a_reference_from_the_file_name_that_is_refused_says_so_and_how_to_set_one(
    own_database_url: str, tmp_path: Path
) -> None:
    """The file's name is the default reference: one holding an ID number was `422
    query.reference`, one holding a member's name refused every line at batch.reference;
    neither said where the reference came from. The ID number and the name are not said."""
    settings = service_settings(own_database_url, tmp_path / "sandbox.db", run_mode="queue")
    id_number = "11010519491231002X"
    by_id = tmp_path / f"{id_number}.ndjson"
    by_name = tmp_path / "低保-张三.ndjson"
    for file in (by_id, by_name):
        with file.open("w") as out:
            for n in range(3):
                body = verification_body([member(make_id_number(), name="张三")], reference=f"n{n}")
                out.write(json.dumps(body, ensure_ascii=False) + "\n")

    async with running_service(settings) as service:
        token = await caseworker_token(own_database_url)
        env = {"HEDUI_URL": service.base_url, "HEDUI_TOKEN": token, "COLUMNS": "80"}
        refused = {}
        for file in (by_id, by_name):
            run = await _cli("submit", str(file), "--no-wait", env=env)
            output, _ = await asyncio.wait_for(run.communicate(), timeout=60)
            refused[file] = (run.returncode, output.decode())
        none_made = await _batches(service.base_url, token)
        given = []
        for file in (by_id, by_name):
            run = await _cli("submit", str(file), "--no-wait", "--reference", "h2", env=env)
            output, _ = await asyncio.wait_for(run.communicate(), timeout=60)
            given.append((run.returncode, output.decode()))
        made = await _batches(service.base_url, token)

    for code, said in refused.values():
        assert code == 1, said
        assert "the batch's reference comes from the file's name (no --reference given)" in said
        assert "--reference TEXT sets another" in said
        assert id_number not in said
        assert "张三" not in said
        assert "Traceback" not in said
    assert "the service refuses it: must not contain an ID number" in refused[by_id][1]
    assert "holds the name of a member of the household on line 1" in refused[by_name][1]
    assert none_made == []
    assert [code for code, _ in given] == [0, 0], given
    assert sorted((batch["reference"], batch["households"]) for batch in made) == [
        ("h2", 3),
        ("h2", 3),
    ]
