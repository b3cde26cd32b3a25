"""`hedui keys`: the key-encryption key's file, the data keys, and their rotation."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.command import fatal
from service.command import run as _run
from service.command import runtime as _runtime
from service.command import settings as _settings

if TYPE_CHECKING:
    from service.crypto.keyring import Keyring
    from service.runtime import Runtime

keys_app = typer.Typer(
    help="Encryption keys: the key-encryption key's file, data keys, rotation (docs/privacy.md).",
    short_help="Encryption keys: the key file, data keys, rotation.",
    no_args_is_help=True,
)
console = Console()


def _keyring(runtime: "Runtime") -> "Keyring":
    if runtime.keyring is None:  # only below the schema head, which commands refuse
        fatal("the database has no data keys yet: run `hedui db upgrade`")
    return runtime.keyring


@keys_app.command("init", short_help="Create a key-encryption key file (never overwrites).")
def keys_init(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Where to write the key file (default: HEDUI_KEY_FILE, else <database>.key "
            "beside a SQLite database)"
        ),
    ] = None,
) -> None:
    """Create a key-encryption key file (mode 0600); never overwrites an existing one.

    The key wraps the data keys stored in the database. Without it, every sealed ID
    number, name, partner record and report is lost: back it up, apart from the
    database's backups. Point the service at it with HEDUI_KEY_FILE.
    """
    from service.crypto.kek import default_key_file, write_key_file

    settings = _settings()
    target = path or settings.key_file or default_key_file(settings.database_url)
    if target is None:
        raise typer.BadParameter("name the file to create", param_hint="PATH")
    try:
        write_key_file(target)
    except FileExistsError:
        fatal(f"{target} exists already; a key file is never overwritten")
    console.print(f"created key file {target} (mode 0600)", highlight=False)
    console.print(
        "BACK IT UP now, apart from the database's backups: without it the sealed data "
        f"cannot be read. Use it with HEDUI_KEY_FILE={target}",
        highlight=False,
    )


@keys_app.command("status", short_help="List the data keys and the latest rotation.")
def keys_status() -> None:
    """List the data keys (no key material) and the latest rotation's progress."""
    from service.crypto.rotation import Rotation
    from service.crypto.store import KeyRepository

    async def run() -> None:
        async with _runtime() as runtime:
            keyring = _keyring(runtime)
            async with runtime.session_factory() as session:
                rows = await KeyRepository.from_session(session).all()
            rotation = Rotation(runtime.engine, runtime.kek, keyring, grace_s=0)
            status = await rotation.status()
        table = Table("kid", "purpose", "state", "created")
        for row in rows:
            table.add_row(row.kid, row.purpose, row.state, row.created_at.isoformat())
        console.print(table)
        if status is not None:
            console.print(
                f"rotation to {status.target_kid}: {status.state}, {status.rewritten} rows "
                f"re-sealed, {status.remaining} left",
                highlight=False,
            )

    _run(run())


@keys_app.command("rotate", short_help="Seal with a new data key; re-seal stored values.")
def keys_rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Rows re-sealed per transaction")
    ] = 500,
    grace_s: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="How long every process gets to learn of the new key (default: twice "
            "HEDUI_KEY_REFRESH_S, plus a second)",
        ),
    ] = None,
) -> None:
    """Seal new values with a new data key and re-seal every stored value with it.

    Runs while the service keeps serving: the new key is announced, made primary, then
    stored values are re-sealed in batches. Progress is kept in the database: if this is
    interrupted, run it again and it resumes. The old keys stay (values in backups
    still need them).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from service.crypto.rotation import Rotation, remaining

    settings = _settings()
    grace = grace_s if grace_s is not None else settings.key_refresh_s * 2 + 1

    async def run() -> None:
        async with _runtime() as runtime:
            rotation = Rotation(
                runtime.engine, runtime.kek, _keyring(runtime), grace_s=grace, batch_size=batch_size
            )
            started = await rotation.begin()
            async with runtime.session_factory() as session:
                total = await remaining(session, started.target_kid)
            console.print(
                f"rotating to data key {started.target_kid}: {total} rows to re-seal "
                f"(after two waits of {grace:g} s: every process learns of the key, then seals "
                "with it)",
                highlight=False,
            )
            with Progress(
                TextColumn("re-sealing"), BarColumn(), MofNCompleteColumn(), console=console
            ) as bar:
                task = bar.add_task("re-sealing", total=total or None)
                status = await rotation.run(lambda done: bar.advance(task, done))
                bar.update(task, total=max(total, status.rewritten), completed=status.rewritten)
        console.print(
            f"done: every value is sealed with {status.target_kid} "
            f"({status.rewritten} rows re-sealed)",
            highlight=False,
        )

    _run(run())
