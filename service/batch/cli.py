"""`hedui batch`: submit a file of households as a batch and follow it, resumably.

The upload goes a piece at a time (`POST /v1/batches/{id}/households`, each line numbered),
and a small state file next to FILE records the batch and how far the upload got, so that
running the same command again after a crash, a lost connection or Ctrl-C continues the
same batch where the service says it stopped, never submitting a household twice.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from service.config import service_url
from service.wording import plural

if TYPE_CHECKING:
    import httpx

batch_app = typer.Typer(
    help="Submit households in bulk and follow a batch. An NDJSON file of households "
    "becomes one batch (a campaign, a yearly review); re-checks of the roll are `hedui "
    "recheck`.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

STATE_SUFFIX = ".hedui-batch.json"
NDJSON = "application/x-ndjson"
BOM = b"\xef\xbb\xbf"

Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        "--url",
        envvar="HEDUI_URL",
        help="Service base URL [default: http://HEDUI_HOST:HEDUI_PORT, so "
        "http://127.0.0.1:8000 unless they are set]",
        show_default=False,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        "--token",
        envvar="HEDUI_TOKEN",
        help="API key (bearer token): a caseworker's key submits a batch; a caseworker's, "
        "approver's or auditor's key reads its status",
    ),
]


def _fingerprint(file: Path) -> dict[str, Any]:
    """Enough to notice that FILE is not the file the state was written for."""
    with file.open("rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()
    return {"file": file.name, "size": file.stat().st_size, "head_sha256": head}


def _fresh_state(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """What a new batch's state file holds before anything is sent."""
    return {
        "fingerprint": fingerprint,
        "idempotency_key": f"hedui-batch-{uuid.uuid4()}",
        "batch_id": None,
        "lines_sent": 0,
        "closed": False,
    }


_STATE_KEYS = frozenset(_fresh_state({}))
"""What a state file hedui wrote holds (one written by hand, or damaged, lacks some)."""


def _is_batch_id(value: object) -> bool:
    """What the server names a batch with: a UUID (it goes into request paths)."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _load_state(path: Path, file: Path, restart: bool) -> dict[str, Any]:
    if not file.is_file():
        # A device or a pipe (`/dev/zero`) has no end to count to and no fingerprint.
        err.print(f"{file} is not a regular file: save the households to a file first")
        raise typer.Exit(2)
    fingerprint = _fingerprint(file)
    if path.exists() and not restart:
        try:
            state: dict[str, Any] = json.loads(path.read_text())
            if (
                not isinstance(state, dict)
                or not state.keys() >= _STATE_KEYS
                or not (state["batch_id"] is None or _is_batch_id(state["batch_id"]))
            ):
                raise ValueError("not a state file")
        except (ValueError, UnicodeDecodeError):
            err.print(
                f"{path} is not a state file hedui wrote (damaged?): --restart starts a new "
                f"batch from {file.name}, or --state names another file"
            )
            raise typer.Exit(2) from None
        if state.get("fingerprint") != fingerprint:
            err.print(
                f"{path} belongs to another version of {file.name} (size or content differ); "
                "--restart starts a new batch from this file"
            )
            raise typer.Exit(2)
        return state
    return _fresh_state(fingerprint)


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically: a crash while writing leaves the previous state."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(state, indent=1))
    temporary.replace(path)


def _pieces(file: Path, after: int, lines_per_piece: int) -> Iterator[tuple[int, int, bytes]]:
    """(first line, last line, body) of each piece after line `after`: bounded memory."""
    piece: list[bytes] = []
    first = after + 1
    number = 0
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number <= after:
                continue
            piece.append(raw if raw.endswith(b"\n") else raw + b"\n")
            if len(piece) == lines_per_piece:
                yield first, number, b"".join(piece)
                piece, first = [], number + 1
    if piece:
        yield first, number, b"".join(piece)


def _count_lines(file: Path) -> int:
    count = 0
    last = b"\n"
    with file.open("rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _blank(raw: bytes, number: int) -> bool:
    """Whether line `number` holds nothing, as the service reads lines: it skips blank ones,
    and the byte-order mark a Windows editor puts first."""
    return not (raw.removeprefix(BOM) if number == 1 else raw).strip()


def _has_households(file: Path) -> bool:
    """Whether FILE has a line that is not blank: an empty file is no batch at all."""
    with file.open("rb") as handle:
        return any(not _blank(raw, number) for number, raw in enumerate(handle, start=1))


def _line_naming(file: Path, reference: str) -> int | None:
    """The first line whose household has a member `reference` names (the service refuses
    every such line: a reference is shown as written, so it must name nobody), or None.
    Lines that are not JSON are left to the service to refuse."""
    from schemas.verification import name_in

    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if _blank(raw, number):
                continue
            try:
                body = json.loads(raw.removeprefix(BOM).decode("utf-8"))
            except ValueError:
                continue
            members = body.get("members") if isinstance(body, dict) else None
            names = [
                member["name"]
                for member in (members if isinstance(members, list) else [])
                if isinstance(member, dict) and isinstance(member.get("name"), str)
            ]
            if name_in(reference, names):
                return number
    return None


FROM_FILE_NAME = "the batch's reference comes from the file's name (no --reference given)"


def _problem(response: httpx.Response) -> None:
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.text}
    table = Table(title=f"{response.status_code} {problem.get('title', '')}", show_header=False)
    if problem.get("detail"):
        table.add_row("detail", str(problem["detail"]))
    for error in problem.get("errors") or []:
        table.add_row(".".join(map(str, error.get("loc", []))), error.get("msg", ""))
    err.print(table)
    raise typer.Exit(1)


def _client(server: str, api_key: str | None) -> httpx.Client:
    # httpx is imported by the commands that call the API, not by every command at start-up.
    import httpx

    if not api_key:
        raise typer.BadParameter(
            "an API key is needed (--api-key or HEDUI_TOKEN)", param_hint="--api-key"
        )
    return httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {api_key}"}, timeout=300
    )


@batch_app.command("submit", short_help="Submit a file of households as one batch.")
def submit(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="Households, one JSON object per line (NDJSON), each the body of POST "
            "/v1/verifications",
        ),
    ],
    server: Server = None,
    api_key: ApiKey = None,
    reference: Annotated[
        str | None, typer.Option(help="The batch's reference [default: the file's name]")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help=f"Where progress is kept [default: FILE{STATE_SUFFIX}]"),
    ] = None,
    lines_per_request: Annotated[
        int, typer.Option(min=1, max=20_000, help="Lines sent per request")
    ] = 2000,
    wait: Annotated[
        bool, typer.Option(help="Follow the verifications until the batch has finished")
    ] = True,
    restart: Annotated[
        bool, typer.Option(help="Forget the state file and start a new batch")
    ] = False,
) -> None:
    """Submit FILE as one batch, with a progress bar for the upload, then for completion.

    Safe to run again: the state file (next to FILE unless --state) records the batch and
    how far the upload got; running the same command after an interruption (Ctrl-C, a lost
    connection, a crash) continues that batch from the line the service received last, so
    no household is submitted twice. Refused lines are listed by line number at the end
    (hedui batch status ID shows them again); the valid ones proceed.

    Exits 1 when FILE has no households (empty, or blank lines only) or the service
    refuses the batch or every line of it; 2 when FILE or the state file cannot be used,
    or the service cannot be reached; 130 when interrupted (Ctrl-C). After the last two,
    running the same command again continues the batch.
    """
    import httpx

    state_path = state or file.with_name(file.name + STATE_SUFFIX)
    progress_state = _load_state(state_path, file, restart)
    if not _has_households(file):
        # Refused before any batch is made: an empty batch, closed at once, helps nobody.
        err.print(
            f"{file} has no households (it is empty or its lines are blank): one JSON "
            "object per line, each the body of POST /v1/verifications",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    from_file_name = reference is None
    reference = reference or file.name[:128]
    if from_file_name and progress_state["batch_id"] is None:
        line = _line_naming(file, reference)
        if line is not None:
            # Neither the name nor the file's name is repeated: they are the household's.
            err.print(
                f"{FROM_FILE_NAME} and holds the name of a member of the household on line "
                f"{line}; a reference is shown as written, so it must name nobody: "
                "--reference TEXT sets another (nothing was sent)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
    total_lines = _count_lines(file)
    server = service_url(server)
    with _client(server, api_key) as client:
        try:
            batch = _upload(
                client,
                file,
                state_path,
                progress_state,
                total_lines,
                reference,
                lines_per_request,
                from_file_name=from_file_name,
            )
            if wait:
                batch = _follow(client, batch)
            _summary(client, batch)
        except httpx.TransportError as error:
            err.print(
                f"cannot reach {server}: {error}. Run the same command again to continue "
                f"(progress is kept in {state_path})"
            )
            raise typer.Exit(2) from error
        except KeyboardInterrupt:
            _interrupted(state_path, progress_state)
    if batch["households"] == 0 and batch["invalid_lines"]:
        err.print(
            f"every line of {file} was refused: nothing is verified (one JSON object per "
            "line, each the body of POST /v1/verifications)"
        )
        raise typer.Exit(1)


def _upload(
    client: httpx.Client,
    file: Path,
    state_path: Path,
    state: dict[str, Any],
    total_lines: int,
    reference: str,
    lines_per_request: int,
    *,
    from_file_name: bool,
) -> dict[str, Any]:
    received = 0
    batch: dict[str, Any] | None = None
    if state["batch_id"] is not None:
        answer = client.get(f"/v1/batches/{state['batch_id']}")
        if answer.status_code >= 400:
            _problem(answer)
        batch = answer.json()
        received = batch["lines_received"]
        if state["closed"]:
            # Sent whole and closed before: nothing is sent again; its progress is followed.
            console.print(
                f"batch {state['batch_id']} was sent whole before ({received} lines, "
                "closed): following it"
            )
            return batch
        console.print(
            f"resuming batch {state['batch_id']} after line {received} "
            f"(this file was sent up to line {state['lines_sent']})"
        )
    if state["batch_id"] is None:
        # Before the first request: interrupted while it is under way, a re-run must send
        # the same Idempotency-Key, which continues that batch instead of making another.
        _save_state(state_path, state)
    columns = (
        TextColumn("upload"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("upload", total=total_lines, completed=received)
        for first, last, body in _pieces(file, received, lines_per_request):
            if state["batch_id"] is None:
                # The first piece makes the batch; its Idempotency-Key makes a repeat (after
                # a crash before the answer arrived) continue it rather than make another.
                answer = client.post(
                    "/v1/batches",
                    params={"close": "false", "reference": reference},
                    content=body,
                    headers={"content-type": NDJSON, "Idempotency-Key": state["idempotency_key"]},
                )
                if from_file_name:
                    _refused_file_name(answer)
            else:
                answer = client.post(
                    f"/v1/batches/{state['batch_id']}/households",
                    params={"first_line": first},
                    content=body,
                    headers={"content-type": NDJSON},
                )
            if answer.status_code >= 400:
                _problem(answer)
            batch = answer.json()
            state["batch_id"] = batch["id"]
            state["lines_sent"] = last
            _save_state(state_path, state)
            progress.update(task, completed=batch["lines_received"])
        progress.update(task, completed=total_lines)
    answer = client.post(f"/v1/batches/{state['batch_id']}/close")
    if answer.status_code >= 400:
        _problem(answer)
    state["closed"] = True
    _save_state(state_path, state)
    closed: dict[str, Any] = answer.json()
    console.print(
        f"batch {closed['id']}: {plural(closed['households'], 'household')} accepted, "
        f"{plural(closed['invalid_lines'], 'line')} refused"
    )
    return closed


def _refused_file_name(answer: httpx.Response) -> None:
    """A reference taken from the file's name that the service refuses (an ID number in
    it): said as such, with the option that sets another, rather than as `query.reference`.
    The service's reason never repeats what it refused."""
    if answer.status_code != 422:
        return
    try:
        errors = answer.json().get("errors") or []
    except (ValueError, AttributeError):
        return
    for error in errors:
        if isinstance(error, dict) and error.get("loc") == ["query", "reference"]:
            err.print(
                f"{FROM_FILE_NAME} and the service refuses it: {error.get('msg')}; "
                "--reference TEXT sets another",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)


def _interrupted(state_path: Path, state: dict[str, Any]) -> NoReturn:
    """Ctrl-C: one line on what is kept and how to go on, and exit status 130."""
    if state["closed"]:
        said = (
            f"interrupted: batch {state['batch_id']} was sent whole and its households are "
            "verified all the same; running the same command again follows it"
        )
    else:
        said = (
            f"interrupted: the upload so far is saved ({state_path}); running the same "
            "command again continues it"
        )
    err.print(said, highlight=False, soft_wrap=True)
    raise typer.Exit(130)


def _follow(client: httpx.Client, batch: dict[str, Any], interval_s: float = 1.0) -> dict[str, Any]:
    columns = (
        TextColumn("verified"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(
            "verify", total=batch["progress"]["total"], completed=batch["progress"]["done"], rate=""
        )
        while not batch["progress"]["finished"]:
            time.sleep(interval_s)
            answer = client.get(f"/v1/batches/{batch['id']}")
            if answer.status_code >= 400:
                _problem(answer)
            batch = answer.json()
            rate = batch["progress"]["rate_per_s"]
            progress.update(
                task,
                total=batch["progress"]["total"],
                completed=batch["progress"]["done"],
                rate=f"{rate:.1f}/s" if rate else "",
            )
    return batch


def _summary(client: httpx.Client, batch: dict[str, Any], errors_shown: int = 10) -> None:
    # A closed batch whose verifications have all ended has finished: say so, not "closed".
    state = batch["status"]
    if state == "closed" and batch["progress"]["finished"]:
        state = "closed, finished"
    elif state == "closed":
        state = "closed, running"
    table = Table(title=f"batch {batch['id']} ({state})", show_header=False)
    table.add_row("households", str(batch["households"]))
    table.add_row("lines refused", str(batch["invalid_lines"]))
    for status, count in sorted(batch["by_status"].items()):
        table.add_row(f"status {status}", str(count))
    for recommendation, count in sorted(batch["by_recommendation"].items()):
        table.add_row(f"recommendation {recommendation}", str(count))
    progress = batch["progress"]
    table.add_row("done", f"{progress['done']} of {progress['total']} ({progress['percent']}%)")
    if progress.get("rate_per_s"):
        table.add_row("rate", f"{progress['rate_per_s']} per second")
    console.print(table)
    if batch["invalid_lines"]:
        answer = client.get(f"/v1/batches/{batch['id']}/errors", params={"limit": errors_shown})
        if answer.status_code < 400:
            errors = Table(title="refused lines (first ones)")
            errors.add_column("line")
            errors.add_column("field")
            errors.add_column("why")
            for item in answer.json()["items"]:
                first = (item.get("errors") or [{}])[0]
                errors.add_row(
                    str(item["line"]),
                    ".".join(map(str, first.get("loc", []))),
                    first.get("msg") or item.get("detail") or item["title"],
                )
            console.print(errors)


@batch_app.command("status", short_help="Show a batch's progress and counts.")
def status(
    batch_id: Annotated[str, typer.Argument(metavar="ID", help="The batch's id")],
    server: Server = None,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the batch as JSON")] = False,
) -> None:
    """Counts per status and recommendation, progress, and the first refused lines."""
    import httpx

    if not _is_batch_id(batch_id):
        err.print(
            f"{batch_id!r} is not a batch id: a batch's id is the UUID `hedui batch submit` "
            "printed (and GET /v1/batches lists)",
            highlight=False,
        )
        raise typer.Exit(2)
    server = service_url(server)
    with _client(server, api_key) as client:
        try:
            answer = client.get(f"/v1/batches/{batch_id}")
        except httpx.TransportError as error:
            err.print(f"cannot reach {server}: {error}")
            raise typer.Exit(2) from error
        if answer.status_code >= 400:
            _problem(answer)
        if as_json:
            print(json.dumps(answer.json(), ensure_ascii=False, indent=2))
            return
        _summary(client, answer.json())
