"""`hedui audit ...`: check the chain, link what is pending, manage the signing key."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from service.command import run as run_command
from service.command import sessions
from service.config import Settings

if TYPE_CHECKING:  # SQLAlchemy loads when a command opens the database, not at start-up
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from service.audit.service import ChainReport

audit_app = typer.Typer(
    help="The tamper-evident audit trail: verify the hash chain and its signed checkpoints.",
    short_help="The audit trail: verify its hash chain and checkpoints.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
CANNOT_CHECK = 3
"""`hedui audit verify`'s status when it could not check at all (no database, a key file it
cannot read): not 2, which says the links were checked and found intact."""


@audit_app.command("verify", short_help="Check the hash chain and the signed checkpoints.")
def verify(
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            metavar="PEM",
            help="Public key (PEM) that signed checkpoints; repeat for rotated keys. "
            "Default: the signing key file of this deployment",
        ),
    ] = None,
    chain_first: Annotated[
        bool,
        typer.Option(
            help="Link pending events first (as the running service would), once the chain "
            "as it stands has been checked"
        ),
    ] = True,
    sign_unsigned: Annotated[
        bool,
        typer.Option(
            "--sign-unsigned",
            help="Sign the chain once its links are checked, when the only problem found is "
            "links no checkpoint covers: for a deployment that ran without its signing key",
        ),
    ] = False,
) -> None:
    """Recompute the hash chain from every event and check every signed checkpoint.

    Exits 0 when the trail is intact; 1 naming the first event or link that was modified,
    deleted or reordered, or the links no signed checkpoint covers although one should; 2
    when the links are intact but no public key was given to check the checkpoints'
    signatures with; 3 when nothing could be checked (no database there, a key file it
    cannot read). Nothing is linked or signed before the chain as it stands is checked,
    and nothing at all when that check fails.
    """
    from service.audit.chainer import AuditChainer, checkpoint_policy, open_signer, signing_key_path
    from service.audit.service import audit as audit_service
    from service.audit.signing import SigningKeyError, load_verifier

    settings = Settings()
    policy = checkpoint_policy(settings)
    paths = public_key or [path for path in [signing_key_path(settings)] if path is not None]
    try:
        verifiers = [load_verifier(path) for path in paths if path.exists()]
    except SigningKeyError as error:
        err.print(f"error: {error}", highlight=False)
        raise typer.Exit(CANNOT_CHECK) from None
    if not verifiers:
        err.print("warning: no public key: checkpoint signatures cannot be checked", style="yellow")

    async def check(factory: "async_sessionmaker[AsyncSession]") -> "ChainReport":
        async with factory() as session:
            return await audit_service.verify(session, verifiers=verifiers, policy=policy)

    async def run() -> int:
        async with sessions(settings.database_url) as factory:
            report = await check(factory)
            key = signing_key_path(settings)
            signer = open_signer(settings, create=False) if key and key.exists() else None
            if sign_unsigned and signer is None:
                err.print("error: --sign-unsigned needs this deployment's signing key")
                return CANNOT_CHECK
            adopt = sign_unsigned and report.uncovered and len(report.problems) == 1
            if not (report.ok or adopt):
                if chain_first:
                    err.print("nothing was linked or signed: the chain as it stands failed")
                return _said(report)
            if adopt and signer is not None:
                async with factory() as session:
                    signed = await audit_service.sign_head(session, signer=signer)
                    await session.commit()
                err.print(f"signed the chain's first {signed} links, checked", highlight=False)
            if chain_first and key is not None and signer is None:
                # An auditor's machine has no signing key: the running service links and
                # signs pending events; what is linked already is checked.
                err.print(
                    f"note: no signing key at {key}: events not yet linked are left to the "
                    "running service (--no-chain-first to say so)",
                    highlight=False,
                )
            elif chain_first:
                await AuditChainer(factory, signer, interval_s=0, policy=policy).run_once()
            if adopt or chain_first:
                report = await check(factory)
        return _said(report)

    raise typer.Exit(run_command(run(), status=CANNOT_CHECK))


def _said(report: "ChainReport") -> int:
    """Print what `verify` found; the exit status."""
    if report.ok and report.unverified:
        err.print(
            f"audit trail links intact ({report.links} links), but its {report.unverified} "
            "signed checkpoints were not checked: no public key. Give --public-key "
            "(`hedui audit public-key` prints it where the signing key is) or set "
            "HEDUI_AUDIT_SIGNING_KEY_FILE",
            style="yellow",
            highlight=False,
        )
        return 2
    if report.ok:
        console.print(
            f"audit trail intact: {report.links} links, {report.checkpoints} signed "
            "checkpoints verified",
            highlight=False,
        )
        unsigned = report.links - report.signed_through
        if unsigned:
            console.print(
                f"the newest {unsigned} links ({report.signed_through + 1}-{report.links}) "
                "come after the last signed checkpoint: until the next one signs them, "
                "deleting them together with their events would leave no trace",
                highlight=False,
            )
        return 0
    err.print(f"audit trail BROKEN: {report.problems[0]}", style="bold red", highlight=False)
    if report.first_bad_event is not None:
        err.print(f"first bad event: {report.first_bad_event}", highlight=False)
    if report.first_bad_seq is not None:
        err.print(f"first bad link: {report.first_bad_seq}", highlight=False)
    for problem in report.problems[1:5]:
        err.print(f"  also: {problem}", highlight=False)
    return 1


@audit_app.command("keygen", short_help="Create a checkpoint signing key.")
def keygen(
    file: Annotated[Path, typer.Argument(help="Where to write the new private key (PEM, 0600)")],
) -> None:
    """Create a checkpoint signing key; set HEDUI_AUDIT_SIGNING_KEY_FILE to it.

    Keep it outside the database and back it up. Give auditors the public half
    (`hedui audit public-key`).
    """
    from service.audit.signing import create_key_file

    if file.exists():
        err.print(f"error: {file} exists; it is never overwritten", highlight=False)
        raise typer.Exit(2)
    signer = create_key_file(file)
    console.print(f"created {file} (key id {signer.key_id})", highlight=False)


@audit_app.command("public-key", short_help="Print the signing key's public half (PEM).")
def public_key(
    file: Annotated[
        Path | None, typer.Argument(help="The signing key file; default: this deployment's")
    ] = None,
) -> None:
    """Print the public half of the signing key (PEM), for auditors' `--public-key`."""
    from service.audit.chainer import signing_key_path
    from service.audit.signing import SigningKeyError, load_verifier

    path = file or signing_key_path(Settings())
    if path is None:
        err.print("error: no signing key is configured (HEDUI_AUDIT_SIGNING_KEY_FILE)")
        raise typer.Exit(2)
    try:
        print(load_verifier(path).public_pem(), end="")
    except SigningKeyError as error:
        err.print(f"error: {error}", highlight=False)
        raise typer.Exit(CANNOT_CHECK) from None
