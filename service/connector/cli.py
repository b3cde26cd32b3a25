"""`hedui connector pause|resume|status`: stop or start calling a partner, and see every
connector's state, from the command line.

Run where the server runs, with its settings: the commands read and write the database of
HEDUI_DATABASE_URL, as `POST /v1/connectors/{name}/pause` does, through the same service
(so the same 409s, the same events), and record the change in the audit trail as
`cli:<user>`. Every server process follows within HEDUI_HEALTH_SYNC_S.
"""

import getpass
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from service.command import fatal
from service.command import run as run_command
from service.command import runtime as command_runtime
from service.command import settings as command_settings

if TYPE_CHECKING:  # SQLAlchemy loads when a command opens the database, not at start-up
    from datetime import datetime

    from connectors.registry import ConnectorRegistry
    from schemas.connector import ConnectorHealth, ConnectorSummary, HealthStatus
    from service.errors import HeduiError

connector_app = typer.Typer(
    help="Partner connectors: pause, resume, status (HEDUI_DATABASE_URL), and conformance "
    "checks for any of them.",
    short_help="Partner connectors: pause, resume, status, conformance checks.",
    no_args_is_help=True,
)
console = Console()

REASON_MAX = 500
"""As `POST /v1/connectors/{name}/pause` takes it."""


@connector_app.command("pause", short_help="Stop calling a partner (every process, within 1 s).")
def pause(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The connector's name, e.g. bank")],
    reason: Annotated[
        str,
        typer.Option(
            help='Why (kept in its events, shown by `hedui connector status`), e.g. "partner '
            'maintenance 02:00-04:00"'
        ),
    ],
) -> None:
    """Pause a connector of HEDUI_DATABASE_URL: every server process stops calling its
    partner within HEDUI_HEALTH_SYNC_S (health probes included). Its source is `error`,
    "paused by operator", and reports asking it are `review`, never `eligible`, until
    `hedui connector resume NAME`. Exits 1 when it is already paused (saying by whom and
    why) or is no connector. Recorded in the audit trail as cli:<user>."""
    _change(name, _reason(reason, required=True), paused=True)


@connector_app.command("resume", short_help="Call a paused partner again.")
def resume(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The connector's name, e.g. bank")],
    reason: Annotated[
        str | None, typer.Option(help='Why (kept in its events), e.g. "maintenance over"')
    ] = None,
) -> None:
    """Resume a paused connector of HEDUI_DATABASE_URL: every server process calls its
    partner again within HEDUI_HEALTH_SYNC_S. Exits 1 when it is not paused. Recorded in the
    audit trail as cli:<user>."""
    _change(name, _reason(reason, required=False), paused=False)


@connector_app.command("status", short_help="Every connector: enabled, paused, health, breaker.")
def status(
    name: Annotated[
        str | None,
        typer.Argument(
            help="One connector, in detail: why its status is what it is, its window's "
            "figures, its breaker, its latest health check and its recent errors",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per line, one line per connector (JSON Lines); with NAME, "
            "its health as `GET /v1/connectors/{name}/health` gives it",
        ),
    ] = False,
) -> None:
    """Every connector of HEDUI_DATABASE_URL as `GET /v1/connectors` lists it: whether it
    is enabled, who paused it, why and since when, its health (every process's calls over
    the last HEDUI_HEALTH_WINDOW_S) and why, and its breaker. With NAME, that connector in
    detail."""
    from service.connector.service import ConnectorNotFound
    from service.connector.service import connector as connector_service

    async def run() -> "tuple[list[ConnectorSummary], dict[str, str]] | ConnectorHealth":
        async with command_runtime() as runtime:
            await runtime.health.sync()  # the shared breakers and pauses, as servers see them
            args = (runtime.registry, runtime.health, runtime.settings)
            async with runtime.session_factory() as session:
                if name is not None:
                    try:
                        return await connector_service.health(session, *args, name)
                    except ConnectorNotFound as error:
                        fatal(_not_registered(name, error, runtime.registry))
                summaries = await connector_service.summaries(session, *args)
                # Why each status is what it is: one more read of the window, for them all.
                assessed = await connector_service.assessments(session, *args)
                return summaries, {each: why for each, (_, why) in assessed.items()}

    ran = run_command(run())
    zone = ZoneInfo(command_settings().timezone)
    if not isinstance(ran, tuple):
        _detail(ran, zone, as_json=as_json)
        return
    summaries, reasons = ran
    if as_json:
        for summary in summaries:
            print(summary.model_dump_json())
        return
    table = Table(
        title=f"connectors ({len(summaries)}), times in {zone.key}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
    )
    table.add_column("Connector", no_wrap=True)
    table.add_column("Enabled", no_wrap=True)
    table.add_column("Health", no_wrap=True)
    table.add_column("Why", overflow="fold")
    table.add_column("Breaker", no_wrap=True)
    table.add_column("Paused", min_width=12, overflow="fold")
    for summary in summaries:
        pause = summary.paused
        paused = (
            f"[bold yellow]paused[/] {pause.paused_at.astimezone(zone):%Y-%m-%d %H:%M} by "
            f"{escape(pause.paused_by)}: {escape(pause.reason)}"
            if pause is not None
            else "no"
        )
        table.add_row(
            summary.name,
            "yes" if summary.enabled else "[dim]no[/]",
            _health(summary.health),
            escape(reasons.get(summary.name, "")),
            summary.breaker.value.replace("_", "-"),
            paused,
        )
    console.print(table)
    if summaries:
        console.print(f"[dim]One in detail: hedui connector status {summaries[0].name}[/]")


def _not_registered(name: str, error: "HeduiError", registry: "ConnectorRegistry") -> str:
    """The refusal about `name`, one line, with the names of the connectors in force (the
    registered ones enabled) when it is not one of them."""
    said = error.detail or error.title
    if name not in registry.names():
        said += f" (in force: {', '.join(sorted(registry.names()))})"
    return said if said.startswith(name) else f"{name}: {said}"


def _detail(health: "ConnectorHealth", zone: ZoneInfo, *, as_json: bool) -> None:
    """One connector's health, as `GET /v1/connectors/{name}/health` has it, for a person."""
    if as_json:
        print(health.model_dump_json())
        return

    def at(moment: "datetime | None") -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}" if moment else "never"

    def ms(value: float | None) -> str:
        return f"{value:g} ms" if value is not None else "-"

    console.print(
        f"[bold]{health.name}[/]: {_health(health.status)}: {escape(health.reason)}  "
        f"[dim](times in {zone.key})[/]"
    )
    since = (
        f"since the breaker closed at {at(health.window_from)}"
        if health.window_restarted
        else f"the last {health.window_s // 60} min"
        if health.window_s >= 120
        else f"the last {health.window_s} s"
    )
    rate = f", success {health.success_rate * 100:.1f}%" if health.success_rate is not None else ""
    rows = [
        ("window", f"{since}: {health.calls} calls, {health.failures} failed, "
         f"{health.refused} refused before reaching the partner{rate}"),
        ("latency", f"p50 {ms(health.latency.p50_ms)}, p95 {ms(health.latency.p95_ms)}, "
         f"p99 {ms(health.latency.p99_ms)} (SLO: p95 {health.slo_p95_ms:g} ms)"),
        ("breaker", health.breaker.value.replace("_", "-")
         + (f" until {at(health.breaker_until)}" if health.breaker_until else "")),
    ]  # fmt: skip
    probe = health.last_probe
    if probe is not None:
        rows.append(
            (
                "check",
                f"{'ok' if probe.ok else '[bold red]failing[/]'} at {at(probe.at)}"
                + (f" ({probe.latency_ms:.0f} ms)" if probe.latency_ms is not None else "")
                + (f": {escape(probe.detail)}" if probe.detail else ""),
            )
        )
    else:
        rows.append(("check", "none yet"))
    rows.append(("last success", at(health.last_success_at)))
    pause = health.paused
    rows.append(
        (
            "paused",
            f"[bold yellow]yes[/], {at(pause.paused_at)} by {escape(pause.paused_by)}: "
            f"{escape(pause.reason)}"
            if pause is not None
            else "no",
        )
    )
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    if health.recent_errors:
        console.print("  recent errors:")
        for error in health.recent_errors[:10]:
            detail = f": {escape(error.detail)}" if error.detail else ""
            console.print(f"    {at(error.at)}  {error.outcome.value}{detail}", highlight=False)
    else:
        console.print("  [dim]no recent errors[/]")


def _health(health: "HealthStatus") -> str:
    style = {"operational": "green", "degraded": "yellow", "down": "bold red"}.get(health.value)
    return f"[{style}]{health.value}[/]" if style else health.value


def _reason(reason: str | None, *, required: bool) -> str:
    """The reason as the API takes it (`PauseRequest`, `ResumeRequest`): the same refusals,
    an ID number among them, said without quoting what was given."""
    from pydantic import ValidationError

    from schemas.connector import PauseRequest, ResumeRequest

    text = (reason or "").strip()
    if (required and not text) or len(text) > REASON_MAX:
        raise typer.BadParameter(f"1 to {REASON_MAX} characters", param_hint="--reason")
    try:
        if required:
            return PauseRequest(reason=text).reason
        return ResumeRequest(reason=text).reason if text else ""
    except ValidationError as error:
        said = str(error.errors(include_input=False)[0]["msg"]).removeprefix("Value error, ")
        raise typer.BadParameter(said, param_hint="--reason") from None


def _change(name: str, reason: str, *, paused: bool) -> None:
    """Pause or resume `name` through the service the API uses, audited as cli:<user>."""
    from service.audit.service import Actor, audit
    from service.connector.service import connector as connector_service
    from service.errors import HeduiError

    actor = Actor.command_line(getpass.getuser())
    change = connector_service.pause if paused else connector_service.resume

    async def run() -> float:
        async with command_runtime() as runtime:
            await runtime.health.sync()  # breakers and pauses as the servers last wrote them
            async with runtime.session_factory() as session:
                try:
                    await change(session, runtime.registry, runtime.health, actor, name, reason)
                except HeduiError as error:
                    fatal(_not_registered(name, error, runtime.registry))
                await audit.record(
                    session,
                    actor,
                    "connector.pause" if paused else "connector.resume",
                    object_type="connector",
                    object_id=name,
                )
                await session.commit()
            return runtime.settings.health_sync_s

    sync_s = run_command(run())
    told = (
        f"paused {name}: every process stops calling it within {sync_s:g} s "
        f"(hedui connector resume {name} undoes it)"
        if paused
        else f"resumed {name}: every process calls it again within {sync_s:g} s"
    )
    console.print(told, highlight=False, markup=False, soft_wrap=True)
