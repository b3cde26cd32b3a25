"""The audit trail's decisions: record an event, chain what is unchained, check the chain.

Services never commit: `record` adds to the caller's transaction (so an event and the change
it records are stored together or not at all); `chain_pending` is run by `AuditChainer` in a
transaction of its own.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import audit as wire
from schemas.audit import AuditQuery, AuditSearch
from service.audit.actions import RECORDED
from service.audit.chain import GENESIS, checkpoint_message, link_hash
from service.audit.repository import AUDIT_EVENTS, RECENT_WINDOW, AuditRepository
from service.audit.signing import Signer, Verifier
from service.auth.principal import Principal
from service.bulk import Rows
from service.errors import InvalidRequest
from service.models import AuditChainLink, AuditCheckpoint
from service.models.base import utcnow
from service.pagination import not_ours
from service.verification.repository import VerificationRepository


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: an API key's holder, or an operator at the command line."""

    key_id: str | None
    name: str
    role: str
    region: str

    @classmethod
    def of(cls, principal: Principal) -> "Actor":
        return cls(
            key_id=principal.key_id,
            name=principal.name,
            role=principal.role.value,
            region=principal.region_prefix,
        )

    @classmethod
    def command_line(cls, user: str) -> "Actor":
        return cls(key_id=None, name=f"cli:{user}", role="admin", region="")


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    every_links: int = 1000
    every: timedelta = timedelta(minutes=5)


@dataclass(slots=True)
class ChainReport:
    """What `verify` found: the first broken link (if any), in words a person can act on."""

    links: int = 0
    checkpoints: int = 0
    unchained: int = 0
    signed_through: int = 0
    """The length of the chain the newest checkpoint signs: links after it could be deleted
    (the newest events with them) without a trace, until the next checkpoint."""
    unverified: int = 0
    """Checkpoints whose signature was not checked: no public key at all was given."""
    problems: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    first_bad_event: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, seq: int | None, event_id: int | None, message: str) -> None:
        if not self.problems:
            self.first_bad_seq, self.first_bad_event = seq, event_id
        self.problems.append(message)


class AuditService:
    async def record(
        self,
        session: AsyncSession,
        actor: Actor,
        action: str,
        *,
        object_type: str,
        object_id: str | None = None,
        object_region: str | ColumnElement[str] | None = None,
        request_id: str | None = None,
        outcome: str = "ok",
        detail: str | None = None,
    ) -> None:
        await AuditRepository.from_session(session).insert(
            **self._values(
                actor,
                action,
                object_type=object_type,
                object_id=object_id,
                object_region=object_region,
                request_id=request_id,
                outcome=outcome,
                detail=detail,
            )
        )

    def event_rows(
        self,
        actor: Actor,
        action: str,
        *,
        object_type: str,
        object_id: str | None,
        object_region: str | None,
        request_id: str | None,
    ) -> Rows:
        """The event `record` would insert, as a row for a caller that inserts it together
        with its change (`service.bulk.insert_together`)."""
        return Rows(
            AUDIT_EVENTS,
            [
                self._values(
                    actor,
                    action,
                    object_type=object_type,
                    object_id=object_id,
                    object_region=object_region,
                    request_id=request_id,
                )
            ],
        )

    @staticmethod
    def _values(
        actor: Actor,
        action: str,
        *,
        object_type: str,
        object_id: str | None,
        object_region: str | ColumnElement[str] | None,
        request_id: str | None,
        outcome: str = "ok",
        detail: str | None = None,
    ) -> dict[str, Any]:
        return {
            "at": utcnow(),
            "actor_key_id": actor.key_id,
            "actor_name": actor.name[:128],
            "role": actor.role,
            "region": actor.region,
            "action": action,
            "object_type": object_type,
            "object_id": object_id[:64] if object_id else None,
            "object_region": object_region,
            "request_id": request_id,
            "outcome": outcome,
            "detail": detail,
        }

    async def chain_pending(
        self,
        session: AsyncSession,
        *,
        signer: Signer | None,
        policy: CheckpointPolicy,
        limit: int = 1000,
    ) -> int:
        """Link up to `limit` unchained events onto the chain, then sign a checkpoint when
        one is due. Returns how many were linked (0 when another process holds the chain)."""
        repository = AuditRepository.from_session(session)
        if not await repository.try_chain_lock():
            return 0
        head = await repository.head()
        seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
        newest_chained = head.event_id if head is not None else 0
        events = await repository.unchained(
            after_event_id=max(0, newest_chained - RECENT_WINDOW), limit=limit
        )
        now = utcnow()
        last = await repository.last_checkpoint() if signer is not None else None
        signed_seq = last.seq if last is not None else 0
        links = []
        checkpoints = []
        for event in events:
            seq += 1
            chained = link_hash(prev, event)
            links.append(
                AuditChainLink(
                    seq=seq, event_id=event.id, prev_hash=prev, hash=chained, chained_at=now
                )
            )
            prev = chained
            if signer is not None and seq - signed_seq >= policy.every_links:
                checkpoints.append(_checkpoint(signer, seq, prev, now))
                signed_seq = seq
        if links:
            await repository.add_links(links)
        # A quiet trail still gets its newest links signed every so often.
        overdue = last is None or now - last.signed_at >= policy.every
        if signer is not None and seq > signed_seq and overdue:
            checkpoints.append(_checkpoint(signer, seq, prev, now))
        for checkpoint in checkpoints:
            await repository.add_checkpoint(checkpoint)
        return len(links)

    async def verify(
        self,
        session: AsyncSession,
        *,
        verifiers: Sequence[Verifier],
        stray_after: timedelta = timedelta(minutes=5),
        batch: int = 5000,
    ) -> ChainReport:
        """Recompute every link from its event, check every checkpoint's signature and
        hash, and look for events no link covers. Names the first link that fails."""
        repository = AuditRepository.from_session(session)
        await repository.read_one_moment()
        report = ChainReport()
        checkpoints = {checkpoint.seq: checkpoint for checkpoint in await repository.checkpoints()}
        by_key = {verifier.key_id: verifier for verifier in verifiers}
        prev, expected_seq, after = GENESIS, 1, 0
        previous_event: int | None = None
        while True:
            links = await repository.links(after_seq=after, limit=batch)
            if not links:
                break
            events = await repository.events_by_id([link.event_id for link in links])
            for link in links:
                after = link.seq
                report.links += 1
                if report.problems:
                    continue
                if link.seq != expected_seq:
                    report.fail(
                        expected_seq,
                        None,
                        f"link {expected_seq} is missing (the chain jumps to {link.seq}, "
                        f"event {link.event_id}, after event {previous_event}): a record "
                        "and its link were deleted",
                    )
                    continue
                event = events.get(link.event_id)
                if event is None:
                    report.fail(
                        link.seq,
                        link.event_id,
                        f"event {link.event_id} (link {link.seq}) was deleted",
                    )
                    continue
                if link.prev_hash != prev:
                    report.fail(
                        link.seq,
                        link.event_id,
                        f"link {link.seq} (event {link.event_id}) does not follow link "
                        f"{link.seq - 1}: links were reordered or rewritten",
                    )
                    continue
                computed = link_hash(prev, event)
                if computed != link.hash:
                    report.fail(
                        link.seq,
                        link.event_id,
                        f"event {link.event_id} (link {link.seq}) was modified after it was "
                        "recorded",
                    )
                    continue
                checkpoint = checkpoints.get(link.seq)
                if checkpoint is not None:
                    report.checkpoints += 1
                    report.signed_through = link.seq
                    _check_checkpoint(report, checkpoint, computed, by_key)
                prev, expected_seq = computed, expected_seq + 1
                previous_event = link.event_id
        if not report.problems:
            beyond = [seq for seq in checkpoints if seq > report.links]
            if beyond:
                report.fail(
                    report.links + 1,
                    None,
                    f"checkpoint {min(beyond)} signs links that are missing: the chain's end "
                    "was deleted",
                )
        strays = await repository.stray_events(before=utcnow() - stray_after, limit=10)
        report.unchained = len(strays)
        if strays and not report.problems:
            report.fail(
                None,
                strays[0],
                f"event {strays[0]} is not on the chain {int(stray_after.total_seconds())} s "
                "after it was recorded: its link was deleted, or no chainer is running",
            )
        return report


def _checkpoint(signer: Signer, seq: int, chain_hash: str, now: datetime) -> AuditCheckpoint:
    return AuditCheckpoint(
        seq=seq,
        hash=chain_hash,
        signed_at=now,
        key_id=signer.key_id,
        signature=signer.sign(checkpoint_message(seq, chain_hash)),
    )


def _check_checkpoint(
    report: ChainReport,
    checkpoint: AuditCheckpoint,
    computed: str,
    by_key: dict[str, Verifier],
) -> None:
    verifier = by_key.get(checkpoint.key_id)
    if checkpoint.hash != computed:
        report.fail(
            checkpoint.seq, None, f"checkpoint {checkpoint.seq} does not match the chain there"
        )
    elif not by_key:
        # No key at all: the signature is not checked, which says nothing of tampering.
        report.unverified += 1
    elif verifier is None:
        report.fail(
            checkpoint.seq,
            None,
            f"checkpoint {checkpoint.seq} was signed with key {checkpoint.key_id}, which was "
            "not given (--public-key)",
        )
    elif not verifier.valid(
        checkpoint_message(checkpoint.seq, checkpoint.hash), checkpoint.signature
    ):
        report.fail(checkpoint.seq, None, f"checkpoint {checkpoint.seq} has a forged signature")


class AuditReader:
    """The auditors' view: pages of events, newest first, inside the caller's region."""

    async def page(
        self, session: AsyncSession, principal: Principal, where: AuditQuery
    ) -> wire.AuditPage:
        if where.action is not None and where.action not in RECORDED:
            # Found nowhere, ever: a typo, not an empty page (as every list's enums are).
            place = "body" if isinstance(where, AuditSearch) else "query"
            raise InvalidRequest.at(
                [place, "action"],
                "is not an action the trail records (e.g. report.read, verification.create; "
                "docs/audit.md lists them)",
            )
        object_ids: list[str] | None = None
        if isinstance(where, AuditSearch) and where.id_number is not None:
            object_ids = await VerificationRepository.from_session(session).ids_with_member(
                where.id_number, scope=principal
            )
            if not object_ids:
                return wire.AuditPage(items=[])
        rows = await AuditRepository.from_session(session).page(
            region_prefix=principal.region_prefix,
            actor_key_id=where.actor_key_id,
            action=where.action,
            object_ids=object_ids,
            object_id=where.object_id,
            since=where.since,
            until=where.until,
            before_id=_decode_cursor(
                where.cursor, "body" if isinstance(where, wire.AuditSearch) else "query"
            ),
            limit=where.limit + 1,
        )
        items = [wire.AuditEvent.model_validate(row) for row in rows[: where.limit]]
        more = len(rows) > where.limit
        return wire.AuditPage(items=items, next_cursor=str(items[-1].id) if more else None)


def _decode_cursor(cursor: str | None, sent_in: str) -> int | None:
    if cursor is None:
        return None
    # An event's id is a 32-bit integer on every database.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 10 or int(cursor) >= 2**31:
        raise not_ours(sent_in)
    return int(cursor)


audit = AuditService()
audit_reader = AuditReader()
