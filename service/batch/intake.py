"""Receiving a batch's households as they arrive, a chunk per transaction.

Like `service.verification.intake`, this commits inside the request, on purpose: each chunk
of households (HEDUI_BATCH_CHUNK, 500 by default) is stored with its verifications, their
jobs, the refused lines and the batch's line count in one transaction, so that an upload
cut short leaves a batch whose `lines_received` says exactly where to resume, and the
memory a batch takes is one chunk, whatever its size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from schemas import batch as wire
from service.auth.principal import Principal
from service.batch.repository import BatchRepository
from service.batch.service import NO_LINES, different_body, line_digest
from service.batch.service import batch as batch_service
from service.batch.stream import Raw
from service.crypto.keyring import Keyring
from service.crypto.sealed import keyring_of
from service.db import WriteGate
from service.errors import BatchClosed, BatchTooLarge, Conflict, InvalidRequest
from service.jobs.queue import RunQueue
from service.models import Batch, Verification
from service.policy.catalog import PolicyCatalog
from service.verification.repository import VerificationRepository


@dataclass
class Upload:
    """What one request brings to a batch; `batch` is made on first need (`make_batch`),
    so a body refused before its first household stores nothing at all."""

    session: AsyncSession
    principal: Principal
    catalog: PolicyCatalog
    sources: list[tuple[str, str]]
    queue: RunQueue
    write_gate: WriteGate
    today: date
    chunk: int
    max_households: int
    max_line_bytes: int
    batch: Batch | None
    make_batch: Callable[[], Batch]
    first_line: int = 1
    keyed: bool = False
    """`POST /v1/batches` with an Idempotency-Key: the upload keeps the key's digest of
    what it stores, and a repeat (`batch` found by the key) is held to it."""
    accepted: int = 0
    invalid: int = 0
    skipped: int = 0
    last_line: int = 0
    _verifications: list[Verification] = field(default_factory=list)
    _problems: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _pending_to: int = 0
    _unsaved: bool = False  # `batch` is new: stored with the first flush
    _chain: str | None = None  # the key's digest through the last line taken (None: not kept)

    async def read(self, lines: AsyncIterator[tuple[int, Raw]]) -> None:
        """Store every line of `lines` not received before; chunk by chunk. A repeat under
        the Idempotency-Key that made the batch must first resend, unchanged, the lines
        the batch received from that key's uploads (422 otherwise, before anything of it
        is stored); it may go on past them."""
        self.last_line = self.first_line - 1
        received = self.batch.lines_received if self.batch is not None else 0
        if self.first_line > received + 1:
            raise InvalidRequest.at(
                ["query", "first_line"],
                f"the batch has received {received} lines; the next is {received + 1}",
            )
        repeated, prefix = self._repeated(), NO_LINES
        self._chain = self._chain_start()
        async for position, raw in lines:
            line = self.first_line - 1 + position
            self.last_line = line
            if repeated is not None:
                if line <= repeated:
                    prefix = line_digest(self._keyring, prefix, line, raw)
                else:
                    self._hold_to_key(prefix)
                    repeated = None
            if line <= received:
                self.skipped += 1
                continue
            if line > self.max_households:
                await self.flush()
                raise BatchTooLarge(self.max_households, self._received())
            if self._chain is not None:
                self._chain = line_digest(self._keyring, self._chain, line, raw)
            await self._take(line, raw)
            if len(self._verifications) + len(self._problems) >= self.chunk:
                await self.flush()
        if repeated is not None:
            self._hold_to_key(prefix)

    def _repeated(self) -> int | None:
        """How many lines this repeat must resend as the key's uploads sent them (None:
        not a repeat, or a batch older than the key's digest)."""
        if not self.keyed or self.batch is None or self.batch.idempotent_digest is None:
            return None
        return self.batch.idempotent_lines

    def _hold_to_key(self, prefix: str) -> None:
        if self.batch is None or prefix != self.batch.idempotent_digest:
            raise different_body()

    def _chain_start(self) -> str | None:
        """Where the key's digest goes on from, if this upload carries it on: a new keyed
        batch, or a repeat of one that has received nothing but the key's uploads."""
        if not self.keyed:
            return None
        if self.batch is None:
            return NO_LINES
        if self.batch.idempotent_lines != self.batch.lines_received:
            return None  # lines added since by `POST /v1/batches/{id}/households`
        return self.batch.idempotent_digest

    @property
    def _keyring(self) -> Keyring:
        return keyring_of(self.session)

    def _received(self) -> int:
        return self.batch.lines_received if self.batch is not None else 0

    async def _take(self, line: int, raw: Raw) -> None:
        if self.batch is None:
            self.batch = self.make_batch()
            self._unsaved = True
        elif self.batch.status != wire.BatchStatus.open.value and not self._pending_to:
            raise BatchClosed(self.batch.status)
        checked = batch_service.check_line(raw, max_line_bytes=self.max_line_bytes)
        if isinstance(checked, dict):
            self._problems.append((line, checked))
        else:
            prepared = await batch_service.prepare(
                self.session,
                checked,
                batch_id=self.batch.id,
                line=line,
                principal=self.principal,
                catalog=self.catalog,
                sources=self.sources,
                today=self.today,
                batch_reference=self.batch.reference,
            )
            if isinstance(prepared, dict):
                self._problems.append((line, prepared))
            else:
                self._verifications.append(prepared)
        self._pending_to = line

    async def ensure_batch(self) -> Batch:
        """The batch, stored now if no line made it (an empty upload)."""
        if self.batch is None:
            self.batch = self.make_batch()
            self._unsaved = True
        await self.flush()
        return self.batch

    async def flush(self) -> None:
        """One transaction: the chunk's verifications with their jobs, its refused lines,
        and the batch's count of lines received (with the first, the batch itself)."""
        if self.batch is None or not (self._pending_to or self._unsaved):
            return
        batch = self.batch
        verifications, problems = self._verifications, self._problems
        repository = BatchRepository.from_session(self.session)
        # Nothing of the database is held while queueing at the write gate: a lock or a
        # pooled connection held here could be what the writer inside is waiting for.
        await self.session.commit()
        async with self.write_gate:
            try:
                if self._unsaved:
                    await repository.add(batch)
                if not self._pending_to:
                    await self.session.commit()
                    self._unsaved = False
                    return
                # First, so that two uploads to one batch queue here and the second fails.
                advanced = await repository.advance(
                    batch.id,
                    received=batch.lines_received,
                    to_line=self._pending_to,
                    households=len(verifications),
                    invalid=len(problems),
                    digest=self._chain,
                )
                if advanced:
                    await VerificationRepository.from_session(self.session).insert_many(
                        verifications
                    )
                    await repository.insert_errors(batch.id, problems)
                    await self.queue.enqueue_many(self.session, verifications)
                    await self.session.commit()
            except IntegrityError as error:
                await self.session.rollback()
                # Another request with the same Idempotency-Key made the batch first, or
                # another upload stored these lines first.
                raise _concurrent() from error
            if not advanced:
                batch_id = batch.id  # the rollback expires it; reading it then would load
                await self.session.rollback()
                current = await repository.get(batch_id, scope="")
                if current is not None and current.status != wire.BatchStatus.open.value:
                    raise BatchClosed(current.status)
                raise _concurrent()
        self._unsaved = False
        self.queue.committed_many(len(verifications))
        # What was just committed, without making the object dirty (no write back).
        set_committed_value(batch, "lines_received", self._pending_to)
        set_committed_value(batch, "households", batch.households + len(verifications))
        set_committed_value(batch, "invalid_lines", batch.invalid_lines + len(problems))
        if self._chain is not None:
            set_committed_value(batch, "idempotent_lines", self._pending_to)
            set_committed_value(batch, "idempotent_digest", self._chain)
        self.accepted += len(verifications)
        self.invalid += len(problems)
        self._verifications, self._problems, self._pending_to = [], [], 0

    def summary(self) -> wire.BatchUpload:
        return wire.BatchUpload(
            first_line=self.first_line,
            last_line=self.last_line,
            accepted=self.accepted,
            invalid=self.invalid,
            skipped=self.skipped,
        )


def _concurrent() -> Conflict:
    return Conflict(
        "Another upload is adding households to this batch; its lines were not stored. "
        "Read the batch's lines_received and resume from there"
    )
