"""`hedui retention run`: purge raw partner records past the retention period now."""

import asyncio
import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from service.config import Settings

retention_app = typer.Typer(
    help="Retention of raw partner records (reports, decisions and the audit trail remain).",
    short_help="Purge raw partner records past their retention period.",
    no_args_is_help=True,
)
console = Console()


@retention_app.command("run", short_help="Purge old raw partner records now.")
def run(
    older_than_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Purge records of verifications finished more than this many days ago "
            "(default HEDUI_RETENTION_RAW_DAYS, 180)",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be purged")] = False,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Verifications per transaction")
    ] = 500,
) -> None:
    """Purge the raw partner records of old verifications now, in committed batches.

    Safe to interrupt and run again, and to run while the service serves: each batch is its
    own transaction. Each batch is recorded in the audit trail. The service also runs this
    on its own every HEDUI_RETENTION_INTERVAL_S.
    """
    from service import db
    from service.audit.service import Actor
    from service.crypto.store import open_keyring
    from service.retention.service import cutoff_for, retention
    from service.runtime import kek_of

    settings = Settings()
    days = older_than_days or settings.retention_raw_days
    cutoff = cutoff_for(days)
    actor = Actor.command_line(getpass.getuser())

    async def work() -> int:
        engine = db.create_engine(settings.database_url)
        try:
            await db.require_current_schema(engine)
            keyring = await open_keyring(engine, kek_of(settings))  # purged lists are sealed
            sessions = db.create_session_factory(engine, keyring)
            async with sessions() as session:
                due = await retention.due(session, cutoff)
            if dry_run or not due:
                return due
            done = 0
            with Progress(
                TextColumn("purging raw partner records"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("purge", total=due)
                while True:
                    async for session in db.session_scope(sessions):
                        purged = await retention.purge_batch(
                            session, cutoff, actor=actor, limit=batch
                        )
                    done += purged
                    progress.update(task, completed=min(done, due))
                    if purged < batch:
                        return done
        finally:
            await engine.dispose()

    from service.crypto.keyring import KeyringError
    from service.db import SchemaNotCurrent

    try:
        count = asyncio.run(work())
    except (SchemaNotCurrent, KeyringError) as error:
        console.print(f"error: {error}", highlight=False)
        raise typer.Exit(2) from None
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} the raw partner records of {count} verifications finished before "
        f"{cutoff.date().isoformat()} ({days} days)",
        highlight=False,
    )
