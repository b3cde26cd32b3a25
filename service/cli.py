"""The `hedui` command line."""

import asyncio
import errno
import getpass
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from service.audit.cli import audit_app
from service.auth.cli import apikey_app
from service.batch.cli import batch_app
from service.command import fatal
from service.command import run as _run
from service.command import runtime as _runtime
from service.command import settings as _settings
from service.config import Settings, service_url
from service.connector.cli import connector_app
from service.crypto.cli import keys_app
from service.retention.cli import retention_app
from service.simulation.cli import policy_app
from service.wording import plural

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    import httpx

    from service.connector.metrics import Metrics

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(connector_app, name="connector")
app.add_typer(apikey_app, name="apikey")
app.add_typer(policy_app, name="policy")
app.add_typer(batch_app, name="batch")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(keys_app, name="keys")

console = Console()


class Language(StrEnum):
    zh = "zh"
    en = "en"


def locale_language(environ: Mapping[str, str] = os.environ) -> Language:
    """The reader's language from the locale (LC_ALL, LC_MESSAGES, LANG): Chinese for a
    zh_* locale, English for any other."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return Language.zh if value.lower().startswith("zh") else Language.en
    return Language.en


HostOption = Annotated[
    str, typer.Option(envvar="HEDUI_HOST", show_envvar=True, help="Interface to bind")
]
PortOption = Annotated[
    int, typer.Option(envvar="HEDUI_PORT", show_envvar=True, help="Port to listen on")
]


def _version(value: bool) -> None:
    if value:
        from service import __version__

        print(f"hedui {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version"),
    ] = False,
) -> None:
    """hedui: household economic-status verification (核对) for social assistance.

    Settings come from HEDUI_* environment variables (README, "Settings"); every command
    that touches the database uses HEDUI_DATABASE_URL (default: ./hedui.db in the current
    directory). Only `serve` and `db upgrade` change the schema; the others refuse a
    database that is behind and say to run `hedui db upgrade`.
    """
    _log_to_stderr()


def _log_to_stderr() -> None:
    """Whatever a command logs goes to stderr, warnings and worse, in the configured format:
    stdout is the command's own output (JSON with `--json`), never a log line. structlog
    left as it comes prints to stdout. A process that set logging up already (`serve`
    sets it again as it starts; a test run) keeps its own."""
    if "--help" in sys.argv[1:]:
        return  # help logs nothing, and stays quick without structlog's import
    import structlog

    if structlog.is_configured():
        return
    from service.logging import configure_logging

    try:
        fmt = Settings().log_format
    except ValidationError:
        fmt = "console"  # the command itself says what is wrong with the settings
    configure_logging("WARNING", fmt)


@app.command(short_help="Apply migrations and serve the API (and the sandbox).")
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port, one per core at most (SQLite or "
            "PostgreSQL; the sandbox must then run apart: `hedui sandbox`, "
            "HEDUI_SANDBOX=off, HEDUI_PARTNER_BASE_URL)",
        ),
    ] = 1,
) -> None:
    """Apply migrations and serve the API (and the sandbox: see HEDUI_SANDBOX in the README).

    With HEDUI_RUN_MODE=inline (the default) this process also runs the verifications it
    accepts; with HEDUI_RUN_MODE=queue, `hedui worker` processes run them. The database is
    HEDUI_DATABASE_URL (default: ./hedui.db). A port already in use is an error at once;
    choose another with --port.
    """
    settings = _settings(host=host, port=port)
    if workers > 1 and settings.sandbox_enabled:
        raise typer.BadParameter(
            "the in-process sandbox keeps its state per process, so it cannot be served by "
            "several: run `hedui sandbox` apart and set HEDUI_SANDBOX=off and "
            "HEDUI_PARTNER_BASE_URL=http://127.0.0.1:8100",
            param_hint="--workers",
        )
    # Bind before anything starts: a port in use is one line, not a "ready" then a failure.
    listener = _listen(settings.host, settings.port)
    # In the configured format from the first line on (a key file created by the migration
    # below is logged, and a log pipeline reading JSON must not meet console text).
    from service.logging import configure_logging

    # Warnings only until the app takes over (its own level then): the migration's steps
    # stay quiet, as before; a key file it creates is said, in the configured format.
    configure_logging("WARNING", settings.log_format)
    # Migrations are one explicit step, taken once here (under an advisory lock on
    # PostgreSQL, so several `hedui serve` starting together take turns).
    _run(_migrate(settings, "head"))

    import uvicorn

    from service.server import KEEP_ALIVE_S, TimedHeadersProtocol

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # hedui's own logging renders uvicorn's lines too
        # Bounded graceful shutdown: a partner call held open (sandbox "hang") must not
        # stall exit.
        "timeout_graceful_shutdown": 5,
        # Slow callers hold nothing for long: headers within HEDUI_HEADER_TIMEOUT_S, idle
        # kept-alive connections closed after 5 s, bodies within HEDUI_BODY_TIMEOUT_S (408).
        "http": TimedHeadersProtocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }
    if workers == 1:
        from service.app import create_app

        server = uvicorn.Server(
            uvicorn.Config(create_app(settings, run_migrations=False, settle_heap=True), **common)
        )
        server.run(sockets=[listener])
        return
    # Several processes: uvicorn binds the port itself (now known to be free) and each
    # process builds its app from the same environment.
    listener.close()
    os.environ["HEDUI_HOST"], os.environ["HEDUI_PORT"] = settings.host, str(settings.port)
    uvicorn.run("service.app:create_migrated_app", factory=True, workers=workers, **common)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error naming what to change."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        fatal(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            fatal(
                f"cannot listen on {host}:{port}: the port is already in use (another "
                "`hedui serve` or `make run`?); choose another with --port or HEDUI_PORT"
            )
        fatal(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    listener.set_inheritable(True)
    return listener


@app.command(short_help="Run verifications from the queue until stopped (scale-out).")
def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="HEDUI_RUN_CONCURRENCY",
            show_envvar=True,
            help="Verifications this worker runs at once (each asks every partner concurrently)",
        ),
    ] = 10,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            envvar="HEDUI_WORKER_METRICS_PORT",
            show_envvar=True,
            help="Serve this worker's Prometheus metrics on http://HOST:PORT/metrics (one "
            "scrape target per worker); off by default",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            envvar="HEDUI_WORKER_METRICS_HOST",
            show_envvar=True,
            help="Address the metrics are served on (0.0.0.0: every interface)",
        ),
    ] = "127.0.0.1",
) -> None:
    """Run verifications from the queue until stopped (Ctrl-C or SIGTERM).

    Start as many workers as you like, on any machine that reaches the database
    (HEDUI_DATABASE_URL) and the partner agencies (HEDUI_PARTNER_BASE_URL); the API
    processes then run with HEDUI_RUN_MODE=queue. On PostgreSQL a worker takes jobs from
    the queue the API fills in the transaction that stores each verification; on SQLite
    it looks for new verifications in the database twice a second. A worker that dies
    (even kill -9) leaves its runs to the others once its lease (HEDUI_RUN_LEASE_S, 30 s)
    expires; no partner is asked again for a source whose answer is stored. Each
    partner's agreed rate and concurrency (HEDUI_CONNECTORS: rate_per_s, max_concurrency)
    hold in total over all workers and API processes on PostgreSQL; on SQLite, per process.
    Every worker also collects parked sources (a bank that answers later) when they are
    due (HEDUI_COLLECT_SWEEP_S); a source is collected by one worker at a time.
    The schema must be current: `hedui db upgrade` first.

    Example, with the same HEDUI_DATABASE_URL, HEDUI_PARTNER_BASE_URL and
    HEDUI_CONNECTORS as the API processes: `hedui worker --concurrency 20`. On Ctrl-C or
    SIGTERM it interrupts its runs and hands them back at once for another process to
    resume (answers already stored are kept).

    With --metrics-port, the worker serves its own /metrics: its partner calls, retries,
    breakers and runs in flight (`hedui_verification_runs_in_flight`). Fleet-wide figures
    (connector status, queue depth) come from the API processes' /metrics.
    """
    settings = _settings(run_concurrency=concurrency)
    _run(_work(settings, metrics_at=(metrics_host, metrics_port) if metrics_port else None))


async def _work(settings: Settings, *, metrics_at: tuple[str, int] | None = None) -> None:
    import signal

    import structlog

    from service import heap
    from service.logging import configure_logging
    from service.runtime import build_runtime

    configure_logging(settings.log_level, settings.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with build_runtime(settings, runs_here=True, worker=True) as runtime:
        exporter = _serve_metrics(runtime.metrics, *metrics_at) if metrics_at else None
        await runtime.start_runs(here=True)
        heap.settle(settings.gc_threshold)
        log = structlog.get_logger(__name__)
        if runtime.engine.dialect.name == "sqlite":
            log.warning(
                "throttles_per_process",
                hint="on SQLite each process keeps the partners' agreed rate and "
                "concurrency (HEDUI_CONNECTORS) on its own: with several processes, divide "
                "them, or use PostgreSQL, where they hold in total",
            )
        log.info(
            "worker_ready",
            database=runtime.engine.url.render_as_string(hide_password=True),
            partners=settings.resolved_partner_base_url(),
            concurrency=settings.run_concurrency,
            metrics=f"http://{metrics_at[0]}:{metrics_at[1]}/metrics" if metrics_at else None,
        )
        try:
            await stop.wait()
        finally:
            if exporter is not None:
                exporter.shutdown()
                exporter.server_close()


def _serve_metrics(metrics: "Metrics", host: str, port: int) -> "WSGIServer":
    """A worker's /metrics, served from a thread (prometheus_client's own server). The
    fleet-wide gauges are left to the API processes: a worker would only repeat them, or
    (queue depth, which it never reads) report a stale zero."""
    from prometheus_client import start_http_server

    for fleet_wide in (metrics.status, metrics.queue_depth):
        metrics.registry.unregister(fleet_wide)
    try:
        server, _ = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        fatal(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}")
    return server


async def _migrate(settings: Settings, revision: str) -> None:
    from service.runtime import build_runtime

    async with build_runtime(settings, migrate_to=revision, runs_here=False):
        pass


@app.command(short_help="Run the sandbox partner agencies alone, in their own process.")
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8100,
    data: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file for seeded people [default: HEDUI_SANDBOX_DATA, ./hedui-sandbox.db]",
            show_default=False,
        ),
    ] = None,
    synthetic: Annotated[
        bool | None,
        typer.Option(
            "--synthetic/--no-synthetic",
            help="Give people nobody seeded synthetic records, or none "
            "[default: HEDUI_SANDBOX_SYNTHETIC, on]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the sandbox partner agencies alone, as a separate process (see docs/partners.md).

    Faults can be injected to see how hedui copes with a partner in trouble: `PUT
    /faults/SOURCE {"mode": "slow|error|hang|garbage|down", "latency_ms": 0, "error_rate":
    0.0}` makes one agency misbehave (bank: `"processing_ms": N` too), `GET /faults` lists
    them, `DELETE /faults/SOURCE` (or `DELETE /faults`, all) makes it answer normally again.
    The same paths are under /sandbox/ on `hedui serve`'s sandbox.
    """
    from sandbox.server import run

    settings = _settings()
    run(
        host=host,
        port=port,
        data_path=str(data or settings.sandbox_data),
        synthetic=settings.sandbox_synthetic if synthetic is None else synthetic,
    )


@db_app.command("upgrade", short_help="Apply the migrations (never down).")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply alembic migrations to HEDUI_DATABASE_URL (never down: a database ahead of
    the target stays where it is, and says so)."""
    from alembic.util import CommandError

    from service import db

    async def run() -> db.SchemaState:
        async with _runtime(migrate_to=revision) as runtime:
            return await db.schema_state(runtime.engine)

    try:
        state = _run(run())
    except CommandError as error:
        fatal(f"cannot upgrade to {revision!r}: {error} (`hedui db current` shows where it is)")
    at = ", ".join(sorted(state.revisions))
    if revision in state.known and revision not in state.revisions:
        fatal(f"the database is at revision {at}, past {revision}: `db upgrade` never goes down")
    console.print(f"database at revision {at}")


@db_app.command("current", short_help="Print the schema revision and whether it is current.")
def db_current() -> None:
    """Print the schema revision HEDUI_DATABASE_URL is at and this hedui's; exit status 1
    when they differ (behind: run `hedui db upgrade`), so a deployment script can check
    before it starts the new version's processes."""
    from service import db

    async def run() -> db.SchemaState:
        engine = db.create_engine(_settings().database_url)
        try:
            return await db.schema_state(engine)
        finally:
            await engine.dispose()

    state = _run(run())
    console.print(f"database: {state.where}", highlight=False, soft_wrap=True)
    console.print(f"at:       {', '.join(sorted(state.revisions)) or '(no hedui schema)'}")
    console.print(f"hedui:    {', '.join(sorted(state.heads))}")
    problem = state.problem()
    if problem is not None:
        fatal(problem)
    console.print("current")


@connector_app.command("test", short_help="Run the conformance checks against a connector.")
def connector_test(
    name: Annotated[str, typer.Argument(help="The connector's name (its source name), e.g. tax")],
    spec: Annotated[
        Path | None,
        typer.Option(
            help="A declarative spec file to check instead of the one registered under NAME",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    recording: Annotated[
        Path | None,
        typer.Option(
            help="A recorded exchange (JSON: members, exchanges) to answer instead of the "
            "sandbox agency",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    agency: Annotated[
        str | None,
        typer.Option(
            help="The sandbox agency imitating the partner [default: from the base URL "
            "(…/sandbox/tax → tax), else NAME]"
        ),
    ] = None,
) -> None:
    """Run the conformance checks against a built-in, plugin or declarative connector.

    The connector is pointed at an in-process sandbox agency (nothing leaves this machine)
    or at a recorded exchange, with faults injected in front of it: it must read the
    answers, turn wire errors into a source error, hold its time limit, refuse garbage
    without raising, answer for every member, keep personal data out of its messages and
    survive cancellation. Declarative connectors come from --spec FILE or, registered over
    the API, from HEDUI_DATABASE_URL (the version in force, else the latest). Exits 1 when
    a check fails, with what to fix.
    """
    from connectors.declarative import SpecInvalid
    from service.connector.conformance import TargetNotFound, load_subject, run_checks

    async def run() -> list[Any]:
        subject, partner = await load_subject(
            name, _settings(), spec_file=spec, recording_file=recording, agency=agency
        )
        with console.status(f"checking {name}…"):
            return await run_checks(subject, partner)

    try:
        checks = _run(run())
    except SpecInvalid as invalid:
        table = Table("Field", "Problem", title=f"{spec} is not a valid spec")
        for problem in invalid.problems:
            table.add_row(problem.pointer, problem.message)
        console.print(table)
        raise typer.Exit(1) from None
    except TargetNotFound as missing:
        fatal(f"no connector is named {name!r}: it is not built in or installed, {missing}")
    except ValueError as error:
        fatal(str(error))
    table = Table("Check", "Result", "Detail", title=f"conformance of {name}")
    style = {"pass": "green", "fail": "bold red", "skip": "yellow"}
    for check in checks:
        table.add_row(check.name, f"[{style[check.result]}]{check.result}[/]", check.detail)
    console.print(table)
    failed = [check for check in checks if check.result == "fail"]
    if failed:
        for check in failed:  # unwrapped, to read and search whatever the terminal's width
            console.print(f"FAILED {check.name}: {check.detail}", soft_wrap=True, markup=False)
        console.print(f"[bold red]{len(failed)} of {len(checks)} checks failed[/]")
        raise typer.Exit(1)
    skipped = sum(check.result == "skip" for check in checks)
    if skipped:
        console.print(
            f"[green]{len(checks) - skipped} checks passed[/], [yellow]{skipped} skipped[/] "
            "(what the partner's format or the recording cannot show)"
        )
    else:
        console.print(f"[green]all {len(checks)} checks passed[/]")


def _request_body(file: Path) -> Any:
    """FILE's JSON, read as the server reads a body: UTF-8, each member named once (a second
    one would be silently kept here, and refused there), nested within the decoder's depth."""
    from service.json_body import DuplicateMember, load_json

    try:
        return load_json(file.read_bytes())
    except RecursionError:
        raise typer.BadParameter(f"{file}: JSON nested too deeply", param_hint="FILE") from None
    except DuplicateMember as exc:
        raise typer.BadParameter(f"{file}: {exc.msg}", param_hint="FILE") from None
    except ValueError as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}", param_hint="FILE") from None


@app.command()
def verify(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, metavar="FILE.json", help="Request body (JSON)"
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            envvar="HEDUI_URL",
            help="Service base URL [default: http://HEDUI_HOST:HEDUI_PORT, so "
            "http://127.0.0.1:8000 unless they are set]",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", "--api-key", envvar="HEDUI_TOKEN", help="Caseworker API key (bearer token)"
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the report")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    lang: Annotated[
        Language | None,
        typer.Option(
            "--lang",
            help="Language of headings and messages [default: from the locale, LC_ALL or "
            "LANG: zh for zh_*, else en]",
            show_default=False,
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="Send this Idempotency-Key: a repeat with the same key and file returns the "
            "first verification instead of asking every partner again"
        ),
    ] = None,
) -> None:
    """Submit a verification, wait for it, and print its report.

    Every run is a new verification (a re-check asks the partners again), unless
    --idempotency-key names an earlier submission to continue. A service that restarts
    meanwhile is waited for (the submission is sent under an Idempotency-Key of its own,
    so it is never made twice); one that stays away names the verification and the key
    to continue with.
    """
    # Imported by the commands that call the API, not by every command at start-up.
    import httpx

    from service.report.render import render_report

    if not token:
        raise typer.BadParameter(
            "an API key is needed (--token or HEDUI_TOKEN)", param_hint="--token"
        )
    if not (token.isascii() and token.isprintable()):
        raise typer.BadParameter(
            "an API key is printable ASCII (hd_…): this one is not a key hedui made",
            param_hint="--token",
        )
    body = _request_body(file)
    language = lang or locale_language()
    url = service_url(url)
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept-Language": language.value,
    }
    # Always sent: a submission whose answer was lost (an API process restarting) is
    # sent again under the same key and returns the one verification it made.
    key = idempotency_key or f"cli-{uuid.uuid4()}"
    headers["Idempotency-Key"] = key
    deadline = time.monotonic() + timeout
    verification_id: str | None = None
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout + 5) as client:
            # A service that cannot be reached at all is said at once; one restarting is
            # given a few seconds (the polls below wait for it until the deadline).
            submit_by = min(deadline, time.monotonic() + SUBMIT_PATIENCE_S)
            response = _patiently(client, "POST", "/v1/verifications", submit_by, json=body)
            if response.status_code >= 400:
                _fail(response)
            verification_id = response.json()["id"]
            report, status = _wait_for_report(
                client, verification_id, deadline, response.json().get("status")
            )
    except httpx.TransportError as exc:
        where = (
            f"; verification {verification_id} was submitted: its report will be at "
            f"{url}/v1/verifications/{verification_id}/report, and running this again with "
            f"--idempotency-key {key} continues with it"
            if verification_id
            else ""
        )
        Console(stderr=True).print(
            f"cannot reach {url}: {exc} (is `hedui serve` running there? Name the service "
            f"with --url or HEDUI_URL, or its port with HEDUI_PORT){where}",
            soft_wrap=True,
        )
        raise typer.Exit(2) from exc
    if report.status_code == 409 and "retry-after" not in report.headers:
        _fail(report)  # it ended without a report (failed, cancelled): what the service says
    if report.status_code == 409:
        # Queued at the end: no process has taken it up (HEDUI_RUN_MODE=queue and no worker).
        state = (
            "is still queued: no worker has taken it yet (is `hedui worker` running?)"
            if status == "queued"
            else "is still running"
        )
        Console(stderr=True).print(
            f"verification {verification_id} {state}; its report will be at "
            f"{url}/v1/verifications/{verification_id}/report (running this again with "
            f"--idempotency-key {key} continues with it; without it, a new verification "
            "asks every partner again)",
            soft_wrap=True,
        )
        raise typer.Exit(3)
    if report.status_code >= 400:
        _fail(report)
    if as_json:
        print(json.dumps(report.json(), ensure_ascii=False, indent=2))
    else:
        render_report(console, report.json(), language.value)


SUBMIT_PATIENCE_S = 5.0
"""How long `hedui verify` sends its submission again while the service is away."""
_PASSING = frozenset({502, 503, 504})
"""Answers of a service that is restarting or overloaded for a moment: asked again."""


def _patiently(
    client: "httpx.Client", method: str, path: str, deadline: float, **kwargs: Any
) -> "httpx.Response":
    """The request, sent again while the service cannot be reached or answers 502-504
    for a moment (an API process restarting), after its `Retry-After` or half a second,
    until `deadline`; the last answer, or the last error once the time is up."""
    import httpx

    while True:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError:
            if time.monotonic() + 0.5 >= deadline:
                raise
            time.sleep(0.5)
            continue
        if response.status_code not in _PASSING:
            return response
        wait = _retry_after(response.headers.get("retry-after"))
        if time.monotonic() + wait >= deadline:
            return response
        time.sleep(wait)


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 0.5), 0.1), 10.0)
    except ValueError:
        return 0.5


def _wait_for_report(
    client: "httpx.Client", verification_id: str, deadline: float, status: str | None
) -> tuple["httpx.Response", str | None]:
    """Follow the verification until it has ended or `deadline`, saying on standard error
    which partners have answered meanwhile (a slow partner, a parked bank answer that takes
    a minute): the submission does not wait, so that there is something to say. The
    report is read once, at the end: every read is an event of the audit trail, and a
    trail full of a command's polling hides who read a household's report. Returns the
    report's answer and the verification's status as last read (`status`: as submitted)."""
    spinner = Console(stderr=True).status("waiting for the partners")
    pause = 0.25
    with spinner:
        while time.monotonic() < deadline:
            read = _patiently(client, "GET", f"/v1/verifications/{verification_id}", deadline)
            if read.status_code != 200:
                break  # refused or gone: the report's answer says how
            current = read.json()
            status = current.get("status")
            if status not in ("queued", "running"):
                break
            sources = current.get("sources") or []
            waiting = [s["source"] for s in sources if s["status"] in ("pending", "awaiting")]
            spinner.update(
                "queued: waiting for a worker to take it"
                if status == "queued"
                else f"{len(sources) - len(waiting)} of {len(sources)} partners answered; "
                f"waiting for {', '.join(waiting) or 'the report'}"
            )
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 1.5, 2.0)
    report = _patiently(client, "GET", f"/v1/verifications/{verification_id}/report", deadline)
    return report, status


@app.command(short_help="Start the re-checks that are due and wait for their results.")
def recheck(
    due: Annotated[
        bool,
        typer.Option(
            "--due", help="Start the re-checks that are due (required: what this command does)"
        ),
    ] = False,
    region: Annotated[
        str | None,
        typer.Option(
            metavar="CODE",
            help="Only recipients in this region: a GB/T 2260 prefix (53 a province, 5301 a "
            "prefecture, 530102 a county) [default: every region]",
            show_default=False,
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="DATE",
            help="Treat DATE (YYYY-MM-DD) as today: a recipient is due when its "
            "next_recheck_on (GET /v1/recipients) is on or before DATE, and the policy in "
            "force on DATE applies (previews, trials, tests) [default: today in "
            "HEDUI_TIMEZONE]",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Count what would be started and list the first 50; change nothing"
        ),
    ] = False,
    even_if_partners_down: Annotated[
        bool,
        typer.Option(
            "--even-if-partners-down",
            help="Start even when no partner answers its health check, or none of those "
            "at HEDUI_PARTNER_BASE_URL (every report would be incomplete, every household "
            "under review)",
        ),
    ] = False,
) -> None:
    """Re-check the recipients whose re-check is due, and wait for the results.

    Each recipient due gets one new verification of the household as approved, under
    the policy in force that day; when it ends, every change since the approved report
    is a warning (GET /v1/warnings), and a change that calls for the approval step puts
    the recipient under review. A re-check is started once, however often this runs and
    alongside the periodic pass of `hedui serve` and `hedui worker`. A recipient whose
    signed authorization has expired is not queried: it is counted as needing new
    consent (POST /v1/recipients/{id}/consent records a new one).

    Prints how many were re-checked, need new consent, were started elsewhere or could
    not be started, how many wait to retry (a re-check whose verification failed waits 5
    minutes, doubling up to a day, by the clock rather than --as-of), how many warnings
    were raised, and each county's batch of the day (GET /v1/batches/{id}). When nothing
    is due, says when the next re-check is.

    Runs the verifications in this process, at most HEDUI_RECHECK_MAX_IN_FLIGHT at once.
    Reads and writes the database of HEDUI_DATABASE_URL (default: ./hedui.db) and asks
    the partners at HEDUI_PARTNER_BASE_URL (default: the sandbox of `hedui serve` on
    HEDUI_PORT): run it where the server runs, with the same settings. Each partner's
    health check is called first: when none answers, or none of those asked at
    HEDUI_PARTNER_BASE_URL (settings other than the server's, or no network), nothing is
    started; one that does not is named, and its re-checks end incomplete and under
    review, as they would in the server's own pass.

    \b
    Examples:
      hedui recheck --due --dry-run         (what is due today, every region)
      hedui recheck --due --region 530102   (run one county's re-checks)
      hedui recheck --due --region 530102 --as-of 2027-12-05 --dry-run
    """
    from datetime import date

    from service.auth.principal import normalise_region_prefix

    if not due:
        raise typer.BadParameter(
            "say --due (start the re-checks that are due; add --dry-run to preview)",
            param_hint="--due",
        )
    try:
        prefix = normalise_region_prefix(region) if region else ""
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--region") from exc
    try:
        today = date.fromisoformat(as_of) if as_of else _settings().today()
    except ValueError as exc:
        raise typer.BadParameter("must be a date, YYYY-MM-DD", param_hint="--as-of") from exc
    _run(_recheck(today, prefix, dry_run=dry_run, even_if_partners_down=even_if_partners_down))


def started_meanwhile(tally: Any, due: int) -> int:
    """Of `due` re-checks counted at the start, those the run never met: due when counted,
    gone when read, because another `hedui recheck` or the server's own pass started them
    (and moved their next date on) in between. They were started elsewhere."""
    met = sum(tally.count(outcome) for outcome in (*_RECHECK_OUTCOMES, "failed"))
    return max(due - met, 0)


_RECHECK_OUTCOMES = {
    "queued": "to start",
    "needs_consent": "needs new consent (not queried)",
    "already_scheduled": "already started",
    "retry_later": "waits to retry",
}


async def _recheck(
    today: Any, prefix: str, *, dry_run: bool, even_if_partners_down: bool = False
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from service.audit.service import Actor
    from service.logging import configure_logging
    from service.recheck.drive import FAILED_RUN, WITHDRAWN_RUN, run_until_done
    from service.runtime import build_runtime

    settings = _settings()
    # The progress bar is the output: only warnings and errors are logged meanwhile.
    configure_logging("WARNING", settings.log_format)
    where = f"in region {prefix}" if prefix else "in every region"
    async with build_runtime(settings, runs_here=True) as runtime:
        scheduler = runtime.rechecks
        total = await scheduler.count_due(today, region_prefix=prefix)
        if not total:
            following = await scheduler.next_due(today, region_prefix=prefix)
            console.print(
                f"Nothing is due on {today} {where if prefix else 'in any region'}; "
                + (
                    f"the next re-check is due on {following} (--as-of {following} "
                    "to preview or run it now)."
                    if following
                    else ("nobody on the roll there" if prefix else "nobody on the roll")
                    + " has a re-check to come (GET /v1/recipients lists who is on it)."
                ),
                highlight=False,
                soft_wrap=True,
            )
            return
        if dry_run:
            plan = await scheduler.preview(today, region_prefix=prefix)
            console.print(
                f"Re-checks due on {today} {where} (dry run):", highlight=False, soft_wrap=True
            )
            table = Table()
            for column in ("recipient", "region", "due on", "would be"):
                table.add_column(column)
            for item in plan.items:
                table.add_row(
                    item.recipient_id,
                    item.region_code,
                    str(item.due_on),
                    _RECHECK_OUTCOMES.get(item.outcome, item.outcome),
                )
            console.print(table)
            shown = f" (the first {len(plan.items)} listed)" if len(plan.items) < total else ""
            console.print(
                f"{plan.queued} to start, {plan.needs_consent} need new consent, "
                f"{plan.already_scheduled} already started"
                + (
                    f", {plan.retry_later} waiting to retry after a failure"
                    if plan.retry_later
                    else ""
                )
                + f"{shown}; nothing was changed",
                highlight=False,
                soft_wrap=True,
            )
            return
        # The look below is the first round: the monitor's own comes an interval later (it
        # would ask every partner twice, and could still be asking as this command ends).
        await runtime.health.start(
            runtime.registry,
            runtime.fetcher.configs,
            runtime.http_client,
            first_probes_here=False,
        )
        down, asked = await runtime.health.unanswered(
            runtime.registry, runtime.fetcher.configs, runtime.http_client
        )
        base = settings.resolved_partner_base_url()
        # The partners asked at HEDUI_PARTNER_BASE_URL (the built-in ones, and any plugin's
        # left at its default) all failing is these settings being wrong, not an outage:
        # a partner registered at an address of its own may still answer.
        # Each with the config it was asked with: a connector registered over the API has
        # its spec's, not the settings' (and may be disabled, out of the registry, by now).
        at_base = [name for name, config in asked.items() if config.base_url.startswith(f"{base}/")]
        none_at_base = bool(at_base) and set(at_base) <= set(down)
        if down and (len(down) == len(asked) or none_at_base) and not even_if_partners_down:
            which = "no partner" if len(down) == len(asked) else f"no partner at {base}"
            console.print(
                f"Nothing was started: {which} answered its health check ({', '.join(down)}; "
                f"the built-in ones asked at {base}), so every re-check would end incomplete "
                "and under review. Run this where the server runs, with its settings "
                "(HEDUI_PARTNER_BASE_URL, or HEDUI_PORT for the sandbox of `hedui serve`), or "
                "add --even-if-partners-down.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
        if down:
            console.print(
                f"Not answering its health check: {', '.join(down)}; their re-checks will be "
                "incomplete and under review.",
                highlight=False,
                soft_wrap=True,
            )
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"re-checks due on {today}", total=total)
            tally = await run_until_done(
                scheduler,
                today,
                region_prefix=prefix,
                progress=lambda n: progress.advance(task, n),
                actor=Actor.command_line(getpass.getuser()),
            )
            meanwhile = started_meanwhile(tally, total)
            progress.advance(task, meanwhile)
    elsewhere = tally.count("already_scheduled") + meanwhile
    failed, withdrawn = tally.count(FAILED_RUN), tally.count(WITHDRAWN_RUN)
    console.print(
        f"{tally.count('queued') - failed - withdrawn} re-checked, "
        + (f"{failed} failed (started again after a wait; see the log), " if failed else "")
        + (f"{withdrawn} withdrawn while running (they need new consent), " if withdrawn else "")
        + f"{tally.count('needs_consent')} need new consent "
        f"(not queried), {elsewhere} already started elsewhere, "
        f"{tally.count('failed')} could not be started (see the log)"
        + (
            f", {tally.count('retry_later')} failed before and wait to retry"
            if tally.count("retry_later")
            else ""
        )
        + "; "
        f"{plural(tally.warnings, 'warning')} raised "
        f"({where}, as of {today})",
        highlight=False,
        soft_wrap=True,
    )
    for batch_id in sorted(tally.batches):
        console.print(f"batch: GET /v1/batches/{batch_id}", highlight=False, soft_wrap=True)
    if tally.warnings:
        console.print(
            "warnings: GET /v1/warnings" + (f"?region_code={prefix}" if prefix else ""),
            highlight=False,
            soft_wrap=True,
        )


def _fail(response: "httpx.Response") -> None:
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.text}
    table = Table(title=f"{response.status_code} {problem.get('title', '')}", show_header=False)
    if problem.get("detail"):
        table.add_row("detail", str(problem["detail"]))
    for error in problem.get("errors", []):
        table.add_row(".".join(map(str, error.get("loc", []))), error.get("msg", ""))
    Console(stderr=True).print(table)
    raise typer.Exit(1)


def run_cli() -> None:
    """The `hedui` command. A setting that is not valid (`HEDUI_*`, `.env`) is one line per
    setting naming it and what is wrong, and exit status 2, not a traceback; its value is
    never echoed (settings hold secrets). A policy file that does not validate is one line
    too (`_run`, where the commands read the policy)."""
    try:
        app()
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        console = Console(stderr=True)
        for problem in error.errors(include_input=False, include_url=False):
            loc = problem["loc"]
            name = "HEDUI_" + "_".join(str(part) for part in loc).upper() if loc else "settings"
            console.print(f"hedui: {name}: {problem['msg']}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run_cli()
