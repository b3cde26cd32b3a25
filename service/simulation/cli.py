"""`hedui policy`: what-if simulations of changed policy figures over stored households."""

import getpass
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.table import Table

from schemas.verification import Area, Program
from service.auth.principal import Role
from service.command import run as _run
from service.command import runtime as _runtime

policy_app = typer.Typer(help="Policy figures: what-if simulations.", no_args_is_help=True)
console = Console()


# The choices the options offer, made from the request's own types: a program or area
# added there is offered here too.
ProgramChoice = StrEnum("ProgramChoice", {value: value for value in get_args(Program)})  # type: ignore[misc]
AreaChoice = StrEnum("AreaChoice", {value: value for value in get_args(Area)})  # type: ignore[misc]


@policy_app.command("simulate", short_help="Re-score stored households with changed figures.")
def policy_simulate(
    program: Annotated[ProgramChoice, typer.Option(help="The program whose figures change")],
    area: Annotated[AreaChoice, typer.Option(help="The area whose figures change")],
    overrides: Annotated[
        list[str],
        typer.Option(
            "--set",
            metavar="NAME=VALUE",
            help="A figure to change (repeatable), e.g. monthly_standard=700",
        ),
    ],
    region: Annotated[
        str,
        typer.Option(
            help="Region prefix of the households (53, 5301, …) [default: every region]",
            show_default=False,
        ),
    ] = "",
    limit: Annotated[int, typer.Option(help="At most this many households")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Re-score stored households with changed figures; nothing is stored.

    Reads the verifications in the database of HEDUI_DATABASE_URL (default: ./hedui.db),
    one per household: a household on the roll by its approved verification, another by
    its latest with the same members, linshi by every application.

    Example: hedui policy simulate --region 53 --program dibao --area urban
    --set monthly_standard=700
    """
    from pydantic import ValidationError

    from schemas.problem import field_errors
    from schemas.report import SimulationRequest
    from service.audit.actions import POLICY_SIMULATE
    from service.audit.service import Actor, audit
    from service.auth.principal import Principal
    from service.errors import HeduiError
    from service.simulation.service import simulate

    figures: dict[str, str] = {}
    for item in overrides:
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--set")
        if name.strip() in figures:
            # Which of the two was meant nobody can say (the API refuses it too).
            raise typer.BadParameter(f"{name.strip()} is given more than once", param_hint="--set")
        figures[name.strip()] = value.strip()
    try:
        request = SimulationRequest(
            overrides=figures,
            region_code=region,
            program=program.value,
            area=area.value,
            limit=limit,
        )
    except ValidationError as exc:
        # Each wrong field by the option that gave it, in words; no pydantic dump.
        problem = field_errors(exc.errors(include_url=False, include_input=False))[0]
        hint, _, where = _option(problem.loc).partition(" ")
        raise typer.BadParameter(
            f"{where + ': ' if where else ''}{problem.msg}", param_hint=hint or None
        ) from exc
    # The command line speaks for whoever holds the database: every region.
    operator = Principal(key_id="cli", name="cli", role=Role.admin, region_prefix="")

    async def run() -> Any:
        async with _runtime() as runtime, runtime.session_factory() as session:
            result = await simulate(session, operator, request)
            # It opened every stored report of the region: recorded as the API's is.
            await audit.record(
                session,
                Actor.command_line(getpass.getuser()),
                POLICY_SIMULATE,
                object_type="simulation",
                detail=f"region {request.region_code}, {request.program} {request.area}, "
                f"{result.verifications} households re-scored",
            )
            await session.commit()
            return result

    try:
        result = _run(run())
    except HeduiError as exc:
        # Named by the option typed (`--set monthly_standard`), not the API's `body.overrides`.
        lines = [
            f"{option}: {e.msg}" if (option := _option(e.loc)) else e.msg for e in exc.errors or []
        ]
        Console(stderr=True).print(
            "\n".join(lines) or str(exc.detail), highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from exc
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    table = Table(title="Policy simulation", show_header=False)
    table.add_row(
        "households re-scored",
        str(result.verifications) + (" (limit reached)" if result.truncated else ""),
    )
    table.add_row("recommendation changed", str(result.changed))
    table.add_row("newly eligible", str(result.newly_eligible))
    table.add_row("no longer eligible", str(result.no_longer_eligible))
    table.add_row("monthly benefits before", f"{result.monthly_benefit_before:.2f}")
    table.add_row("monthly benefits after", f"{result.monthly_benefit_after:.2f}")
    table.add_row("monthly delta", f"{result.monthly_benefit_delta:+.2f}")
    console.print(table)


_OPTIONS = {
    "overrides": "--set",
    "region_code": "--region",
    "program": "--program",
    "area": "--area",
    "limit": "--limit",
}
"""The request's fields by the option of `policy simulate` that gives each."""


def _option(loc: Sequence[str | int]) -> str:
    """Where a request error is (`body.overrides.monthly_standard`, as the API names it, or
    `overrides.monthly_standard`, as the request model does) by the option that gave it:
    `--set monthly_standard`, `--region`; "" when no option did."""
    fields = list(loc)
    if fields[:1] == ["body"]:
        del fields[0]
    option = _OPTIONS.get(str(fields[0])) if fields else None
    if option is None:
        return ""
    figure = ".".join(map(str, fields[1:])) if option == "--set" else ""
    return f"{option} {figure}" if figure else option
