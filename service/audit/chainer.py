"""Scheduling of the chain: every `HEDUI_AUDIT_CHAIN_INTERVAL_S`, link what was recorded
since and sign a checkpoint when due. Runs in every API and worker process; on PostgreSQL
an advisory lock makes one of them do each round (the others find nothing to do)."""

from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.service import ChainRound, CheckpointPolicy
from service.audit.service import audit as audit_service
from service.audit.signing import Signer, SigningKeyError, create_key_file, load_signer
from service.config import Settings
from service.db import session_scope
from service.jobs.periodic import Periodic

log = structlog.get_logger(__name__)

DEFAULT_KEY_NAME = "hedui-audit-signing.key"


def signing_key_path(settings: Settings) -> Path | None:
    """The configured key file; for a SQLite file database, one beside it by default."""
    if settings.audit_signing_key_file is not None:
        return settings.audit_signing_key_file
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / DEFAULT_KEY_NAME
    return None


def open_signer(settings: Settings, *, create: bool) -> Signer | None:
    """The checkpoint signer, creating the embedded default's key file on first run."""
    path = signing_key_path(settings)
    if path is None:
        log.warning(
            "audit_checkpoints_unsigned",
            hint="set HEDUI_AUDIT_SIGNING_KEY_FILE (create one with `hedui audit keygen FILE`) "
            "so the audit chain gets signed checkpoints",
        )
        return None
    if not path.exists() and create and settings.audit_signing_key_file is None:
        try:
            signer = create_key_file(path)
        except FileExistsError:  # another process of this deployment made it just now
            return load_signer(path)
        log.warning(
            "audit_signing_key_created",
            path=str(path),
            key_id=signer.key_id,
            hint="back this file up and keep it away from the database: it signs the audit "
            "trail's checkpoints; give auditors its public half (`hedui audit public-key`)",
        )
        return signer
    try:
        return load_signer(path)
    except SigningKeyError as error:
        raise SystemExit(str(error)) from None


def checkpoint_policy(settings: Settings) -> CheckpointPolicy:
    return CheckpointPolicy(
        every_links=settings.audit_checkpoint_links,
        every=timedelta(minutes=settings.audit_checkpoint_minutes),
    )


class AuditChainer:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        signer: Signer | None = None,
        *,
        interval_s: float,
        policy: CheckpointPolicy,
    ) -> None:
        self.session_factory = session_factory
        self.signer = signer
        self.interval_s = interval_s
        self.policy = policy
        self._periodic = Periodic(
            "audit_chain_round", interval_s, self.run_once, errors=(SQLAlchemyError, OSError)
        )
        self._held_back: set[int] = set()
        self._unsigned: str | None = None

    async def run_once(self, *, final: bool = False) -> int:
        """Chain everything pending now; the number of events linked. `final`: sign what
        is unsigned too, checkpoint due or not (a process stopping)."""
        linked_total = 0
        while True:
            try:
                async for session in session_scope(self.session_factory):
                    done = await audit_service.chain_pending(
                        session, signer=self.signer, policy=self.policy, final=final
                    )
            except IntegrityError:
                return linked_total  # another process linked the same events first
            linked_total += done.linked
            self._report(done)
            if done.pending < 1000 or not done.linked:
                return linked_total

    def _report(self, done: ChainRound) -> None:
        """Say once (not every round) what the chain would not take or sign."""
        for event_id in done.held_back:
            if event_id not in self._held_back:
                self._held_back.add(event_id)
                log.error(
                    "audit_event_back_dated",
                    event_id=event_id,
                    hint="recorded well before the newest event on the chain: left unlinked "
                    "(`hedui audit verify` reports it)",
                )
        if done.unsigned is not None and done.unsigned != self._unsigned:
            log.error(
                "audit_checkpoint_refused",
                problem=done.unsigned,
                hint="nothing is signed over links that fail their check: run `hedui audit "
                "verify`; a deployment that ran without its signing key signs its chain once "
                "with `hedui audit verify --sign-unsigned`",
            )
        self._unsigned = done.unsigned

    def start(self, signer: Signer | None) -> None:
        """Chain in the background from now on, signing checkpoints with `signer`."""
        self.signer = signer
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.close()
        if self.signer is None:
            return
        # Stopping: the newest links get their checkpoint now, not at the next start.
        try:
            await self.run_once(final=True)
        except (SQLAlchemyError, OSError) as error:
            log.warning("audit_final_checkpoint_failed", error=type(error).__name__)
