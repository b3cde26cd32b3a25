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
from service.crypto.sealed import keyring_of
from service.errors import InvalidRequest
from service.models import AuditChainLink, AuditCheckpoint, AuditEvent
from service.models.base import utcnow
from service.pagination import decode_cursor, listing, next_cursor, not_ours
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


CLOCK_TOLERANCE = timedelta(minutes=1)
"""How far the clocks of the processes recording events may disagree (and how long an
event's transaction may take to commit after it was recorded): an event this much older
than the newest linked one is still linked; one older still is not (a back-dated insert)."""


LINK_WITHIN = timedelta(minutes=5)
"""An event not on the chain this long after it was recorded is reported by verify."""


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When the chainer signs: after `every_links` links, and at least every `every` while
    links are unsigned; nor does one checkpoint's stretch of links span more than `every`
    of recording time (events recorded while no chainer ran are signed in such stretches)."""

    every_links: int = 1000
    every: timedelta = timedelta(minutes=5)

    @property
    def widest(self) -> timedelta:
        """The most recording time the links after one checkpoint may span."""
        return self.every + CLOCK_TOLERANCE

    @property
    def stale(self) -> timedelta:
        """How old an unsigned link's event may be where a chainer with the key runs: one
        checkpoint's time, after the time an event may wait for its link."""
        return self.every + LINK_WITHIN


@dataclass(slots=True)
class ChainRound:
    """What one round of `chain_pending` did."""

    linked: int = 0
    pending: int = 0
    """Unchained events it looked at (linked, or held back)."""
    held_back: list[int] = field(default_factory=list)
    """Events it did not link: recorded more than `CLOCK_TOLERANCE` before the newest
    linked one (back-dated). `hedui audit verify` reports them as not on the chain."""
    unsigned: str | None = None
    """Why a checkpoint that was due was not signed: the links it would sign failed their
    check (their hashes, or no checkpoint covering a stretch wider than the policy allows)."""


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
    uncovered: bool = False
    """The one problem is that no signed checkpoint covers the newest links when one
    should (checkpoints deleted, or links chained while no signing key was configured)."""
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
        subject_blind: str | None = None,
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
                subject_blind=subject_blind,
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
        subject_blind: str | None = None,
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
            "subject_blind": subject_blind,
        }

    async def chain_pending(
        self,
        session: AsyncSession,
        *,
        signer: Signer | None,
        policy: CheckpointPolicy,
        limit: int = 1000,
        final: bool = False,
    ) -> ChainRound:
        """Link up to `limit` unchained events onto the chain, then sign a checkpoint when
        one is due (`final`: sign whatever is unsigned, as a process stops). Nothing is
        signed that was not checked: the links since the last checkpoint are recomputed
        from their events first, and a stretch of them no checkpoint covers that spans more
        recording time than the policy allows (checkpoints deleted) is not signed over.
        An event recorded well before the newest linked one is not linked (back-dated)."""
        done = ChainRound()
        repository = AuditRepository.from_session(session)
        if not await repository.try_chain_lock():
            return done
        head = await repository.head()
        seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
        newest_chained = head.event_id if head is not None else 0
        newest_at = await repository.event_at(head.event_id) if head is not None else None
        events = await repository.unchained(
            after_event_id=max(0, newest_chained - RECENT_WINDOW), limit=limit
        )
        done.pending = len(events)
        now = utcnow()
        tail = None if signer is None else await _Tail.read(repository, signer, seq)
        links = []
        checkpoints = []
        for event in events:
            if newest_at is not None and event.at < newest_at - CLOCK_TOLERANCE:
                done.held_back.append(event.id)
                continue
            newest_at = max(newest_at or event.at, event.at)
            if tail is not None and tail.spans_past(event.at, policy):
                # The links so far were recorded over `every` already: signed apart.
                checkpoints += await tail.sign(repository, policy, seq, prev, now)
            seq += 1
            chained = link_hash(prev, event)
            links.append(
                AuditChainLink(
                    seq=seq, event_id=event.id, prev_hash=prev, hash=chained, chained_at=now
                )
            )
            prev = chained
            if tail is not None:
                tail.add(event.at)
                if seq - tail.signed_seq >= policy.every_links:
                    checkpoints += await tail.sign(repository, policy, seq, prev, now)
        done.linked = len(links)
        if links:
            await repository.add_links(links)
        # A quiet trail still gets its newest links signed every so often.
        if tail is not None and seq > tail.signed_seq and (final or tail.overdue(now, policy)):
            checkpoints += await tail.sign(repository, policy, seq, prev, now)
        for checkpoint in checkpoints:
            await repository.add_checkpoint(checkpoint)
        done.unsigned = tail.problem if tail is not None else None
        return done

    async def sign_head(self, session: AsyncSession, *, signer: Signer) -> int:
        """Sign the chain as it stands, whatever it spans (its links checked by the caller
        first: `hedui audit verify --sign-unsigned`); the length signed."""
        repository = AuditRepository.from_session(session)
        head = await repository.head()
        last = await repository.last_checkpoint()
        if head is None or (last is not None and last.seq >= head.seq):
            return 0
        await repository.add_checkpoint(_checkpoint(signer, head.seq, head.hash, utcnow()))
        return head.seq

    async def verify(
        self,
        session: AsyncSession,
        *,
        verifiers: Sequence[Verifier],
        policy: CheckpointPolicy = CheckpointPolicy(),
        stray_after: timedelta = LINK_WITHIN,
        batch: int = 5000,
    ) -> ChainReport:
        """Recompute every link from its event, check every checkpoint's signature and
        hash, look for links no checkpoint covers when one should (signing is configured:
        a key to check with was given, or checkpoints exist), and for events no link
        covers. Names the first link that fails."""
        repository = AuditRepository.from_session(session)
        await repository.read_one_moment()
        report = ChainReport()
        checkpoints = {checkpoint.seq: checkpoint for checkpoint in await repository.checkpoints()}
        by_key = {verifier.key_id: verifier for verifier in verifiers}
        prev, expected_seq, after = GENESIS, 1, 0
        previous_event: int | None = None
        earliest: datetime | None = None  # of the links after the last checkpoint
        latest: datetime | None = None
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
                event = events.get(link.event_id)
                holds = _link_holds(report, link, event, prev, expected_seq, previous_event)
                if not holds or event is None:
                    continue
                computed = link.hash
                earliest = event.at if earliest is None else min(earliest, event.at)
                latest = event.at if latest is None else max(latest, event.at)
                checkpoint = checkpoints.get(link.seq)
                if checkpoint is not None:
                    report.checkpoints += 1
                    report.signed_through = link.seq
                    earliest = latest = None
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
        if not report.problems and (by_key or checkpoints):
            _check_covered(report, earliest, latest, policy, stray_after)
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


def _uncovered(first: int, last: int, earliest: datetime, latest: datetime) -> str:
    return (
        f"no signed checkpoint covers links {first}–{last}, recorded "
        f"{earliest:%Y-%m-%d %H:%M:%S} to {latest:%Y-%m-%d %H:%M:%S} UTC: checkpoints were "
        "deleted, or these links were chained while no signing key was configured"
    )


@dataclass(slots=True)
class _Tail:
    """The links after the last checkpoint, as the chainer signs them: checked once (from
    the checkpoint, recomputed from their events) before anything is signed over them."""

    signer: Signer
    last: AuditCheckpoint | None
    head_seq: int
    signed_seq: int
    signed_event_at: datetime | None = None
    """When the event of the last checkpoint's link was recorded."""
    earliest: datetime | None = None
    latest: datetime | None = None
    checked: bool = False
    problem: str | None = None

    @classmethod
    async def read(cls, repository: AuditRepository, signer: Signer, head_seq: int) -> "_Tail":
        last = await repository.last_checkpoint()
        signed_seq = last.seq if last is not None else 0
        tail = cls(signer, last, head_seq, signed_seq)
        if last is not None:
            link = await repository.link(last.seq)
            tail.signed_event_at = await repository.event_at(link.event_id) if link else None
        if head_seq > signed_seq:  # the stretch's ends, for a first look at its span
            for seq in (signed_seq + 1, head_seq):
                link = await repository.link(seq)
                at = await repository.event_at(link.event_id) if link is not None else None
                if at is not None:
                    tail.add(at)
        return tail

    def add(self, at: datetime) -> None:
        self.earliest = at if self.earliest is None else min(self.earliest, at)
        self.latest = at if self.latest is None else max(self.latest, at)

    def spans_past(self, at: datetime, policy: CheckpointPolicy) -> bool:
        """Linking an event recorded at `at` would stretch the unsigned links past `every`."""
        return self.earliest is not None and at - self.earliest > policy.every

    def overdue(self, now: datetime, policy: CheckpointPolicy) -> bool:
        """The last checkpoint before this round was signed `every` ago (or none was)."""
        last = self.last
        return last is None or now - last.signed_at >= policy.every

    async def sign(
        self,
        repository: AuditRepository,
        policy: CheckpointPolicy,
        seq: int,
        chain_hash: str,
        now: datetime,
    ) -> list[AuditCheckpoint]:
        """A checkpoint over the chain up to `seq`, unless what it would cover failed its
        check (then none, now or later this round)."""
        if not self.checked:
            self.problem = await self._check(repository, policy)
            self.checked = True
        if self.problem is not None:
            return []
        self.signed_seq = seq
        self.earliest = self.latest = None
        return [_checkpoint(self.signer, seq, chain_hash, now)]

    async def _check(self, repository: AuditRepository, policy: CheckpointPolicy) -> str | None:
        prev = GENESIS
        if self.last is not None:
            link = await repository.link(self.last.seq)
            if link is None or link.hash != self.last.hash:
                return f"checkpoint {self.last.seq} does not match the chain there"
            message = checkpoint_message(self.last.seq, self.last.hash)
            ours = self.last.key_id == self.signer.key_id
            if ours and not self.signer.verifier.valid(message, self.last.signature):
                return f"checkpoint {self.last.seq} has a forged signature"
            prev = link.hash
        if self.head_seq <= self.signed_seq:
            return None
        problem = self._too_wide(policy)
        expected, after = self.signed_seq + 1, self.signed_seq
        while problem is None and after < self.head_seq:
            links = await repository.links(after_seq=after, limit=1000)
            events = await repository.events_by_id([link.event_id for link in links])
            for link in links:
                if link.seq > self.head_seq:
                    break
                after = link.seq
                event = events.get(link.event_id)
                if (
                    link.seq != expected
                    or event is None
                    or link.prev_hash != prev
                    or link_hash(prev, event) != link.hash
                ):
                    return f"link {expected} does not match its event or the link before it"
                self.add(event.at)
                prev, expected = link.hash, expected + 1
            if not links:
                return f"link {expected} is missing"
            problem = self._too_wide(policy)
        return problem

    def _too_wide(self, policy: CheckpointPolicy) -> str | None:
        """Links no checkpoint covers that span more than one checkpoint's time, or that
        are old and do not follow on from a checkpoint within it (a process that stopped
        before signing its last links leaves those: they are signed when one starts)."""
        if self.earliest is None or self.latest is None:
            return None
        wide = self.latest - self.earliest > policy.widest
        stale = utcnow() - self.earliest > policy.stale
        follows = self.signed_event_at is not None and (
            self.earliest - self.signed_event_at <= policy.widest
        )
        if not wide and (not stale or follows):
            return None
        return _uncovered(self.signed_seq + 1, self.head_seq, self.earliest, self.latest)


def _link_holds(
    report: ChainReport,
    link: AuditChainLink,
    event: AuditEvent | None,
    prev: str,
    expected_seq: int,
    previous_event: int | None,
) -> bool:
    """Whether `link` is the next link, of its event as recorded; else the report says why."""
    if link.seq != expected_seq:
        report.fail(
            expected_seq,
            None,
            f"link {expected_seq} is missing (the chain jumps to {link.seq}, "
            f"event {link.event_id}, after event {previous_event}): a record "
            "and its link were deleted",
        )
    elif event is None:
        report.fail(link.seq, link.event_id, f"event {link.event_id} (link {link.seq}) was deleted")
    elif link.prev_hash != prev:
        report.fail(
            link.seq,
            link.event_id,
            f"link {link.seq} (event {link.event_id}) does not follow link "
            f"{link.seq - 1}: links were reordered or rewritten",
        )
    elif link_hash(prev, event) != link.hash:
        report.fail(
            link.seq,
            link.event_id,
            f"event {link.event_id} (link {link.seq}) was modified after it was recorded",
        )
    else:
        return True
    return False


def _check_covered(
    report: ChainReport,
    earliest: datetime | None,
    latest: datetime | None,
    policy: CheckpointPolicy,
    stray_after: timedelta,
) -> None:
    """Signing is configured: the chainer signs the links it makes within `every` of the
    last checkpoint, and never lets one checkpoint's links span more. Unsigned links older
    than that (and than an event may wait for its link), or spanning more, had checkpoints
    that are gone (or were chained with no signing key configured)."""
    if earliest is None or latest is None:
        return
    stale = utcnow() - earliest > policy.every + stray_after
    if stale or latest - earliest > policy.widest:
        report.uncovered = True
        report.fail(
            report.signed_through + 1,
            None,
            _uncovered(report.signed_through + 1, report.links, earliest, latest),
        )


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
        sent_in = "body" if isinstance(where, AuditSearch) else "query"
        blind: str | None = None
        object_ids: list[str] | None = None
        if isinstance(where, AuditSearch) and where.id_number is not None:
            blind = keyring_of(session).blind(where.id_number)
        # The list and its filters (the person by the blind index of their ID number, keyed:
        # nothing a cursor carries tells who was searched for).
        listed = listing(
            "audit.search" if isinstance(where, AuditSearch) else "audit",
            {**where.model_dump(exclude={"id_number"}), "member": blind},
        )
        before_id = _decode_cursor(where.cursor, listed, sent_in)
        if isinstance(where, AuditSearch) and where.id_number is not None:
            # The events about their households, and those that looked them up by name.
            object_ids = await VerificationRepository.from_session(session).ids_with_member(
                where.id_number, scope=principal
            )
        rows = await AuditRepository.from_session(session).page(
            region_prefix=principal.region_prefix,
            actor_key_id=where.actor_key_id,
            action=where.action,
            object_ids=object_ids,
            subject_blind=blind,
            object_id=where.object_id,
            since=where.since,
            until=where.until,
            before_id=before_id,
            limit=where.limit + 1,
        )
        items = [wire.AuditEvent.model_validate(row) for row in rows[: where.limit]]
        return wire.AuditPage(
            items=items,
            next_cursor=next_cursor(rows, where.limit, lambda row: (row.at, str(row.id)), listed),
        )


def _decode_cursor(cursor: str | None, listed: str, sent_in: str) -> int | None:
    """The id of the last event a cursor of the list `listed` has shown."""
    if cursor is None:
        return None
    _, event_id = decode_cursor(cursor, listed, sent_in)
    # An event's id is a 32-bit integer on every database.
    if not (event_id.isascii() and event_id.isdigit()) or len(event_id) > 10:
        raise not_ours(sent_in)
    if int(event_id) >= 2**31:
        raise not_ours(sent_in)
    return int(event_id)


audit = AuditService()
audit_reader = AuditReader()
