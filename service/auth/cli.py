"""`hedui apikey ...`: create, list and revoke the keys callers of `/v1` use.

Run where the server runs, with its settings: the commands read and write the database of
HEDUI_DATABASE_URL (default: ./hedui.db). A token is printed once, by `create`; nothing
else ever shows it (only its SHA-256 is stored).
"""

import getpass
import re
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from schemas import apikey as wire
from service.audit.actions import APIKEY_CREATE, APIKEY_REVOKE
from service.auth.principal import EVERY_REGION_CODE, Role
from service.command import fatal, sessions
from service.command import run as run_command
from service.config import Settings

if TYPE_CHECKING:  # SQLAlchemy loads when a command opens the database, not at start-up
    pass

apikey_app = typer.Typer(
    help="API keys for callers of the /v1 API: create, list, revoke (HEDUI_DATABASE_URL).",
    short_help="API keys for callers of the /v1 API: create, list, revoke.",
    no_args_is_help=True,
)
console = Console()

ID_PREFIX = 8
"""How much of a key's id `list` shows; `revoke` takes it (or more, or the whole id)."""
MIN_ID_PREFIX = 4
_DURATION = re.compile(r"(?P<amount>[0-9]{1,5})\s*(?P<unit>[mhdw]?)")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks", "": "days"}


class StatusChoice(StrEnum):
    active = "active"
    expired = "expired"
    revoked = "revoked"
    all = "all"


KEY_STATUSES: dict[StatusChoice, wire.KeyStatus] = {
    StatusChoice.active: "active",
    StatusChoice.expired: "expired",
    StatusChoice.revoked: "revoked",
}


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w`, or a number of days."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match["amount"]) == 0:
        raise ValueError("give a positive duration: 90d, 12h, 30m, 2w, or a number of days")
    return timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})


def parse_expiry(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date (the key stops working at 00:00 of that day, in HEDUI_TIMEZONE) or date
    and time (in HEDUI_TIMEZONE unless it carries an offset)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), zone).astimezone(UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "give an ISO date (2027-03-01) or date and time (2027-03-01T18:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _local(moment: datetime | None, zone: ZoneInfo, empty: str = "") -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else empty


@apikey_app.command("create", short_help="Create an API key (the token on the last line).")
def create(
    role: Annotated[Role, typer.Option(help="What the key may do")],
    region: Annotated[
        str,
        typer.Option(
            help="GB/T 2260 prefix (53, 5301, 530102) or a township code (530102001); 00 or * = all"
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            help='The person or system the key belongs to, e.g. "Zhang caseworker, Kunming '
            'Wuhua" (shown in decisions and the audit trail). Default: role, region and '
            "who created it"
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="Valid for: 90d, 12h, 30m, 2w, or days. Default: HEDUI_API_KEY_DAYS (90)",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            help="Valid until: an ISO date (stops at 00:00 that day) or date and time, in "
            "HEDUI_TIMEZONE unless an offset is given",
        ),
    ] = None,
) -> None:
    """Create an API key; the token is printed alone on the last line (it is not stored).

    The key is written to the database of HEDUI_DATABASE_URL (default: ./hedui.db): run
    this where the server runs, with the same settings.
    """
    from service.audit.service import Actor, audit
    from service.auth.principal import normalise_region_prefix
    from service.auth.service import LONGEST_LIFETIME, clean_name, create_api_key
    from service.models.base import utcnow

    settings = Settings()
    zone = ZoneInfo(settings.timezone)
    user = getpass.getuser()
    try:
        prefix = normalise_region_prefix(region)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--region") from exc
    if name is None:
        holder = f"{role.value}, region {prefix or 'all'}, created by {user}"
    else:
        try:
            holder = clean_name(name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--name") from exc
    if expires_in is not None and expires is not None:
        raise typer.BadParameter("give --expires-in or --expires, not both", param_hint="--expires")
    now = utcnow()
    try:
        if expires is not None:
            expires_at = parse_expiry(expires, zone)
        else:
            lifetime = parse_duration(expires_in) if expires_in is not None else None
            expires_at = now + (lifetime or timedelta(days=settings.api_key_days))
    except (ValueError, OverflowError) as exc:
        hint = "--expires" if expires is not None else "--expires-in"
        raise typer.BadParameter(str(exc), param_hint=hint) from exc
    if expires_at <= now:
        raise typer.BadParameter("that moment has passed", param_hint="--expires")
    if expires_at > now + LONGEST_LIFETIME:
        raise typer.BadParameter(
            f"a key is valid for {LONGEST_LIFETIME.days // 365} years at most",
            param_hint="--expires" if expires is not None else "--expires-in",
        )

    async def run() -> str:
        async with sessions(settings.database_url) as factory, factory() as session:
            key, token = await create_api_key(
                session, role=role, region=prefix or "00", name=holder, expires_at=expires_at
            )
            await audit.record(
                session,
                Actor.command_line(user),
                APIKEY_CREATE,
                object_type="api_key",
                object_id=key.id,
                detail=f"role {key.role}, region {key.region_prefix or 'all'}, "
                f"expires {expires_at.isoformat(timespec='seconds')}",
            )
            await session.commit()
        console.print(
            f"created key {key.id} for {key.name!r} ({key.role}, region "
            f"{key.region_prefix or 'all'}), valid until {_local(expires_at, zone)} "
            f"{settings.timezone}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        if name is None:
            console.print(
                'say whom it belongs to next time: --name "person or system"',
                style="dim",
                highlight=False,
                markup=False,
            )
        return token

    token = run_command(run())
    print(token)


@apikey_app.command("list", short_help="List the keys, newest first; never a token.")
def list_keys(
    status: Annotated[
        StatusChoice, typer.Option(help="Only keys in this state")
    ] = StatusChoice.all,
    role: Annotated[Role | None, typer.Option(help="Only keys of this role")] = None,
    region: Annotated[
        str | None,
        typer.Option(help="Only keys inside this region prefix (53 shows 53, 5301, ...)"),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Only keys whose name contains this")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per line, one line per key (full ids): JSON Lines, for "
            "scripts (`jq -s` makes an array)",
        ),
    ] = False,
) -> None:
    """The keys of HEDUI_DATABASE_URL, newest first: whom each belongs to, what it may do,
    when it expires and was last used (to the minute). Never a token."""
    from service.auth.principal import normalise_region_prefix
    from service.auth.repository import ApiKeyRepository, KeyFilter
    from service.auth.service import to_wire
    from service.models.base import utcnow

    settings = Settings()
    zone = ZoneInfo(settings.timezone)
    try:
        prefix = normalise_region_prefix(region) if region is not None else ""
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--region") from exc
    where = KeyFilter(
        region_prefix=prefix,
        status=None if status is StatusChoice.all else KEY_STATUSES[status],
        role=role.value if role else None,
        name_contains=name,
    )
    now = utcnow()

    async def run() -> list[wire.ApiKey]:
        async with sessions(settings.database_url) as factory, factory() as session:
            keys = await ApiKeyRepository.from_session(session).page(where, now=now, limit=None)
        return [to_wire(key, now) for key in keys]

    keys = run_command(run())
    if as_json:
        for key in keys:
            print(key.model_dump_json())
        return
    table = Table(
        title=f"API keys ({len(keys)}), times in {settings.timezone}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=0,  # the box's column separator is the space between columns
    )
    # Narrow terminals wrap the name and the times; the other columns stay whole.
    table.add_column("ID", no_wrap=True)
    table.add_column("Name", min_width=10, overflow="fold")
    table.add_column("Role", no_wrap=True)
    table.add_column("Region", no_wrap=True)
    table.add_column("Created", min_width=10)
    table.add_column("Expires", min_width=10)
    table.add_column("Last used", min_width=10)
    table.add_column("Status", no_wrap=True)
    style = {"active": "green", "expired": "yellow", "revoked": "red"}
    soon = now + timedelta(days=14)
    wide = console.width >= 110  # else expiry dates alone (`--json` has every instant)
    for key in keys:
        expiry = _local(key.expires_at, zone, "never")[: None if wide else 10]
        if key.status == "active" and key.expires_at is not None and key.expires_at <= soon:
            expiry = f"[yellow]{expiry}[/]"
        holder = _escape(key.name)
        if key.revoked_reason:
            holder += f"\n[dim]revoked: {_escape(key.revoked_reason)}[/]"
        table.add_row(
            key.id[:ID_PREFIX],
            holder,
            key.role,
            "all" if key.region == EVERY_REGION_CODE else key.region,
            _local(key.created_at, zone)[:10],
            expiry,
            _local(key.last_used_at, zone, "never"),
            f"[{style[key.status]}]{key.status}[/]",
        )
    console.print(table)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@apikey_app.command("revoke", short_help="Revoke a key (refused everywhere within seconds).")
def revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="ID", help="The key's id, or its first 4+ characters")
    ],
    reason: Annotated[
        str | None, typer.Option(help="Why (kept with the key, shown by `hedui apikey list`)")
    ] = None,
) -> None:
    """Revoke a key of HEDUI_DATABASE_URL: every server process refuses it within
    HEDUI_PRINCIPAL_CACHE_S seconds (5 by default). The key is kept, with when and why, for
    decisions and the audit trail."""
    from service.audit.service import Actor, audit
    from service.auth.repository import ApiKeyRepository
    from service.auth.service import REASON_MAX, ApiKeyRevoked, revoke_api_key

    key_id = key_id.strip().lower()
    if len(key_id) < MIN_ID_PREFIX or not re.fullmatch(r"[0-9a-f-]+", key_id):
        raise typer.BadParameter(
            f"give the key's id or its first {MIN_ID_PREFIX} or more characters "
            "(as `hedui apikey list` shows it)",
            param_hint="ID",
        )
    if reason is not None and not (0 < len(reason.strip()) <= REASON_MAX):
        raise typer.BadParameter(f"1 to {REASON_MAX} characters", param_hint="--reason")
    settings = Settings()

    async def run() -> str:
        async with sessions(settings.database_url) as factory, factory() as session:
            matches = await ApiKeyRepository.from_session(session).with_id_prefix(key_id)
            if not matches:
                fatal(f"no API key has an id starting with {key_id}")
            if len(matches) > 1:
                fatal(f"more than one key's id starts with {key_id}: give more of it")
            try:
                key = await revoke_api_key(session, matches[0].id, reason=reason)
            except ApiKeyRevoked as error:
                fatal(f"{matches[0].id} ({matches[0].name}): {error.detail}")
            await audit.record(
                session,
                Actor.command_line(getpass.getuser()),
                APIKEY_REVOKE,
                object_type="api_key",
                object_id=key.id,
                # The reason stays with the key: free text has no place in the trail.
                detail="reason given" if key.revoked_reason else None,
            )
            await session.commit()
            return f"revoked key {key.id} ({key.name})"

    console.print(run_command(run()), highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"servers refuse it within {settings.principal_cache_s:g} s (HEDUI_PRINCIPAL_CACHE_S)",
        style="dim",
        highlight=False,
    )
