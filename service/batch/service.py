"""Batches: the decisions (checking a line, counting, cancelling); SQL lives in the
repository, and the chunked, committing upload in `service.batch.intake`."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from schemas import batch as wire
from schemas.identity import OneLine, redact_id_numbers
from schemas.problem import ProblemError, field_errors, summary, unreadable_body_error
from schemas.verification import VerificationCreate, VerificationStatus
from service.auth.principal import Principal
from service.batch.repository import ENDED, BatchRepository
from service.batch.stream import SAVE_AS_UTF8, Raw, TooLong
from service.crypto.keyring import Keyring
from service.errors import BatchClosed, BatchNotFound, Conflict, HeduiError, InvalidRequest
from service.json_body import DuplicateMember, load_json
from service.models import Batch, Verification
from service.models.base import new_id, utcnow
from service.pagination import decode_cursor, listing, next_cursor
from service.policy.catalog import PolicyCatalog
from service.recipient.repository import RecipientRepository
from service.verification.service import refuse_member_names
from service.verification.service import verification as verification_service
from service.webhook import outbox


def line_problem(
    status: int, title: str, detail: str | None, errors: list[ProblemError]
) -> dict[str, Any]:
    """A refused line's problem as stored: field names and reasons, any ID number masked
    (a message may quote what was sent)."""
    return {
        "status": status,
        "title": title,
        "detail": redact_id_numbers(detail) if detail else None,
        "errors": [
            {
                "loc": [redact_id_numbers(str(p)) if isinstance(p, str) else p for p in e.loc],
                "msg": redact_id_numbers(e.msg),
            }
            for e in errors
        ],
    }


def _validation_problem(error: ValidationError) -> dict[str, Any]:
    # Only location and message: pydantic's `input` would carry ID numbers and names.
    errors = [
        ProblemError(loc=["body", *problem.loc], msg=problem.msg)
        for problem in field_errors(error.errors(include_url=False, include_input=False))
    ]
    return line_problem(422, "Invalid request", summary(errors), errors)


_ONE_LINE: TypeAdapter[str] = TypeAdapter(OneLine)


def _unreadable_line(cause: BaseException) -> ProblemError:
    """Why a line could not even be decoded, as a body's would be (`unreadable_body_error`);
    for bytes that are not UTF-8, with what to do about it."""
    problem = unreadable_body_error(cause)
    if isinstance(cause, UnicodeDecodeError):
        return problem.model_copy(update={"msg": f"{problem.msg} ({SAVE_AS_UTF8})"})
    return problem


def check_reference(reference: object, loc: list[str | int]) -> str | None:
    """A batch's reference as given at `loc` (the query's, or the JSON body's), or why not."""
    if reference is None:
        return None
    if not isinstance(reference, str) or not 1 <= len(reference) <= 128:
        raise InvalidRequest.at(loc, "must be a string of 1 to 128 characters")
    try:
        return _ONE_LINE.validate_python(reference)
    except ValidationError as error:
        message = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise InvalidRequest.at(loc, message) from None


NO_LINES = "0" * 64
"""The digest of no lines at all: where the chain of an Idempotency-Key's upload starts."""


def line_digest(keyring: Keyring, digest: str, line: int, raw: Raw) -> str:
    """The chain `digest` (of the lines before `line`) carried over line `line`: a keyed
    hash, so that a stored digest cannot be matched against guessed households. A line
    over the size limit, never read whole, counts by its size."""
    content = hashlib.sha256(raw).digest() if isinstance(raw, bytes) else b"%d" % raw.size
    return keyring.keyed_hash("batch-line", digest.encode() + line.to_bytes(8, "big") + content)


def different_body() -> InvalidRequest:
    """A repeat under an Idempotency-Key that is not a resend of the upload it named."""
    return InvalidRequest(
        "Idempotency-Key already used for a different request body: a repeat continues the "
        "batch that key made only when it resends that upload (the same reference, and the "
        "lines the batch received from it, unchanged, before any new ones); use a new key "
        "for another upload",
        errors=[
            ProblemError(
                loc=["header", "Idempotency-Key"], msg="already used for a different request body"
            )
        ],
    )


class BatchService:
    def new(
        self, principal: Principal, *, reference: str | None, idempotency_key: str | None
    ) -> Batch:
        """A new open batch, not stored yet (`service.batch.intake` stores it with its
        first chunk, or alone for an empty upload)."""
        return Batch(
            id=new_id(),
            reference=reference,
            region_prefix=principal.region_prefix,
            created_by=principal.key_id,
            idempotency_key=idempotency_key,
            idempotent_lines=0,
            idempotent_digest=None if idempotency_key is None else NO_LINES,
            status=wire.BatchStatus.open.value,
            lines_received=0,
            households=0,
            invalid_lines=0,
            created_at=utcnow(),
        )

    async def find(
        self,
        session: AsyncSession,
        principal: Principal,
        idempotency_key: str | None,
        *,
        reference: str | None,
    ) -> Batch | None:
        """The batch this key's `Idempotency-Key` made before, if any; a repeat must name
        it as the upload that made it did (its lines are held to it as they are read)."""
        if idempotency_key is None:
            return None
        found = await BatchRepository.from_session(session).by_idempotency_key(
            principal.key_id, idempotency_key
        )
        if found is not None and found.reference != reference:
            raise different_body()
        return found

    def check_line(
        self,
        raw: Raw,
        *,
        max_line_bytes: int,
    ) -> VerificationCreate | dict[str, Any]:
        """The household of one line, or the problem that line alone would have been."""
        if isinstance(raw, TooLong):
            return line_problem(
                413,
                "Content too large",
                f"The line is larger than {max_line_bytes} bytes (HEDUI_MAX_BODY_BYTES)",
                [ProblemError(loc=["body"], msg=f"larger than {max_line_bytes} bytes")],
            )
        try:
            # Decoded as a single request's body is, and checked as one is (so a refusal
            # names the same field): for one thing pydantic's own JSON reading lets
            # through, a member named twice (it keeps the last); for one it refuses
            # without saying where, a lone surrogate (text no UTF-8 can carry).
            loaded = load_json(raw)
        except DuplicateMember as error:
            duplicate = [ProblemError(loc=["body"], msg=error.msg)]
            return line_problem(422, "Invalid request", summary(duplicate), duplicate)
        except (ValueError, RecursionError) as unreadable:
            # Bytes that are not UTF-8 are said as a single request's body's are (pydantic
            # says "invalid unicode code point", which sends nobody to the file's encoding).
            if not isinstance(unreadable, UnicodeDecodeError):
                try:
                    VerificationCreate.model_validate_json(raw)  # not JSON: pydantic says where
                except ValidationError as error:
                    return _validation_problem(error)
            # What the decoder refuses and pydantic would read (a constant such as NaN).
            problems = [_unreadable_line(unreadable)]
            return line_problem(422, "Invalid request", summary(problems), problems)
        try:
            return VerificationCreate.model_validate(loaded)
        except ValidationError as error:
            return _validation_problem(error)

    async def prepare(
        self,
        session: AsyncSession,
        body: VerificationCreate,
        *,
        batch_id: str,
        line: int,
        principal: Principal,
        catalog: PolicyCatalog,
        sources: list[tuple[str, str]],
        today: date,
        batch_reference: str | None = None,
    ) -> Verification | dict[str, Any]:
        """The verification of a valid line (not stored), or why the line is refused: as
        a single verification would be, and when the batch's own reference names one of
        its members (it is shown as given in lists and webhooks, as a reference is)."""
        try:
            names = [member.name for member in body.members]
            refuse_member_names(batch_reference, names, ["batch", "reference"])
            verification, _ = await verification_service.prepare(
                session,
                principal=principal,
                body=body,
                catalog=catalog,
                sources=sources,
                today=today,
            )
        except HeduiError as error:
            return line_problem(error.status, error.title, error.detail, error.errors or [])
        verification.batch_id = batch_id
        verification.batch_line = line
        return verification

    async def get(self, session: AsyncSession, principal: Principal, batch_id: str) -> Batch:
        batch = await BatchRepository.from_session(session).get(batch_id, scope=principal)
        if batch is None:
            raise BatchNotFound()
        return batch

    async def read(self, session: AsyncSession, principal: Principal, batch_id: str) -> wire.Batch:
        return await self.view(session, await self.get(session, principal, batch_id))

    async def view(
        self, session: AsyncSession, batch: Batch, *, now: datetime | None = None
    ) -> wire.Batch:
        repository = BatchRepository.from_session(session)
        by_status: dict[VerificationStatus, int] = {}
        by_recommendation: dict[Any, int] = {}
        for status, recommendation, count in await repository.counts(batch.id):
            key = VerificationStatus(status)
            by_status[key] = by_status.get(key, 0) + count
            # A withdrawn verification's report stands no more: its recommendation is
            # not the batch's (its status says what became of it).
            if recommendation is not None and key is not VerificationStatus.withdrawn:
                by_recommendation[recommendation] = by_recommendation.get(recommendation, 0) + count
        total = sum(by_status.values())
        done = sum(count for status, count in by_status.items() if status.value in ENDED)
        finished = batch.status != wire.BatchStatus.open.value and done == total
        end = (await repository.last_ended(batch.id) if finished and done else None) or (
            now or utcnow()
        )
        elapsed = (end - batch.created_at).total_seconds()
        rate = done / elapsed if done and elapsed > 0 else None
        return wire.Batch(
            id=batch.id,
            reference=batch.reference,
            kind=wire.BatchKind(batch.kind),
            status=wire.BatchStatus(batch.status),
            created_at=batch.created_at,
            closed_at=batch.closed_at,
            cancelled_at=batch.cancelled_at,
            completed_at=batch.completed_at,
            lines_received=batch.lines_received,
            households=batch.households,
            invalid_lines=batch.invalid_lines,
            by_status=by_status,
            by_recommendation=by_recommendation,
            progress=wire.BatchProgress(
                total=total,
                done=done,
                percent=round(100.0 * done / total, 1) if total else 100.0,
                rate_per_s=round(rate, 2) if rate else None,
                eta_s=round((total - done) / rate, 1) if rate and not finished else None,
                finished=finished,
            ),
        )

    async def complete_ended(self, session: AsyncSession, *, limit: int = 100) -> list[str]:
        """Complete the closed or cancelled batches that have nothing left to run, each
        once however many processes try, recording `batch.completed` with it (ids and
        counts only). The ids completed here."""
        repository = BatchRepository.from_session(session)
        completed: list[str] = []
        for batch in await repository.ended_uncompleted(limit=limit):
            now = utcnow()
            if not await repository.mark_completed(batch.id, now):
                continue  # another process did
            view = await self.view(session, batch, now=now)
            await outbox.record(
                session,
                "batch.completed",
                batch.region_prefix[:6],
                {
                    "batch_id": batch.id,
                    "reference": batch.reference,
                    "kind": batch.kind,
                    "status": batch.status,
                    "households": batch.households,
                    "invalid_lines": batch.invalid_lines,
                    "by_status": {str(k): n for k, n in view.by_status.items()},
                    "by_recommendation": {str(k): n for k, n in view.by_recommendation.items()},
                },
                # A township key's batch: its township's webhooks get it too.
                township_code=batch.region_prefix if len(batch.region_prefix) == 9 else None,
                now=now,
            )
            completed.append(batch.id)
        return completed

    async def page(
        self, session: AsyncSession, principal: Principal, where: wire.BatchFilter
    ) -> wire.BatchPage:
        repository = BatchRepository.from_session(session)
        listed = listing("batches", where)
        rows = await repository.page(
            scope=principal,
            status=where.status.value if where.status else None,
            completed=where.completed,
            kind=where.kind.value if where.kind else None,
            reference=where.reference,
            limit=where.limit + 1,
            after=decode_cursor(where.cursor, listed) if where.cursor else None,
        )
        page = rows[: where.limit]
        return wire.BatchPage(
            items=[await self.view(session, batch) for batch in page],
            next_cursor=next_cursor(
                rows, where.limit, lambda row: (row.created_at, row.id), listed
            ),
        )

    async def errors(
        self, session: AsyncSession, principal: Principal, batch_id: str, where: wire.LinePage
    ) -> wire.BatchErrorPage:
        batch = await self.get(session, principal, batch_id)
        rows = await BatchRepository.from_session(session).errors(
            batch.id, after_line=_line_cursor(where.cursor), limit=where.limit + 1
        )
        return wire.BatchErrorPage(
            items=[
                wire.BatchLineError(line=row.line, **row.problem) for row in rows[: where.limit]
            ],
            next_cursor=str(rows[where.limit - 1].line) if len(rows) > where.limit else None,
        )

    async def verifications(
        self,
        session: AsyncSession,
        principal: Principal,
        batch_id: str,
        where: wire.BatchVerificationFilter,
    ) -> wire.BatchVerificationPage:
        batch = await self.get(session, principal, batch_id)
        rows = await BatchRepository.from_session(session).verifications(
            batch.id,
            scope=principal,
            status=where.status.value if where.status else None,
            recommendation=where.recommendation,
            after_line=_line_cursor(where.cursor),
            limit=where.limit + 1,
        )
        return wire.BatchVerificationPage(
            items=[
                wire.BatchVerification(
                    line=line,
                    id=id_,
                    reference=reference,
                    status=VerificationStatus(status),
                    recommendation=recommendation,
                )
                for line, id_, reference, status, recommendation in rows[: where.limit]
            ],
            next_cursor=str(rows[where.limit - 1][0]) if len(rows) > where.limit else None,
        )

    async def close(self, session: AsyncSession, principal: Principal, batch_id: str) -> Batch:
        """No more households: its verifications run to the end. Closing twice is fine."""
        batch = await self.get(session, principal, batch_id)
        if batch.status == wire.BatchStatus.cancelled.value:
            raise BatchClosed(batch.status)
        if batch.status == wire.BatchStatus.open.value:
            now = utcnow()
            await BatchRepository.from_session(session).set_status(
                batch.id, wire.BatchStatus.closed.value, closed_at=now
            )
            set_committed_value(batch, "status", wire.BatchStatus.closed.value)
            set_committed_value(batch, "closed_at", now)
        return batch

    async def cancel(
        self, session: AsyncSession, principal: Principal, batch_id: str
    ) -> tuple[Batch, int]:
        """Cancel the batch and its verifications nobody has started (how many); started
        ones finish. A re-check whose verification is cancelled so ends with it, its
        recipient due again (the next pass starts it in the day's next batch). Cancelling
        twice changes nothing more; a batch that has finished cannot be (409)."""
        batch = await self.get(session, principal, batch_id)
        repository = BatchRepository.from_session(session)
        finished = batch.completed_at is not None or (
            # Closed with everything ended: finished, though the sweep that completes it
            # (and sends `batch.completed`) has not come by yet.
            batch.status == wire.BatchStatus.closed.value and await repository.all_ended(batch.id)
        )
        if batch.status != wire.BatchStatus.cancelled.value and finished:
            # Its `batch.completed` event went out, or will: a cancelled one would say
            # otherwise.
            raise Conflict(
                "The batch has finished: every verification in it has ended, so nothing is "
                "left to cancel"
            )
        now = utcnow()
        if batch.status != wire.BatchStatus.cancelled.value:
            await repository.set_status(
                batch.id, wire.BatchStatus.cancelled.value, cancelled_at=now
            )
            set_committed_value(batch, "status", wire.BatchStatus.cancelled.value)
            set_committed_value(batch, "cancelled_at", now)
        cancelled = await repository.cancel_queued(batch.id, now)
        # No run ends these (`RunEnded` never sees them): a re-check one of them ran ends
        # here, in the same transaction (an uploaded batch has none).
        await RecipientRepository.from_session(session).end_cancelled_rechecks(batch.id, now)
        return batch, cancelled


def _line_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 9:
        raise InvalidRequest.at(["query", "cursor"], "not a cursor this service issued")
    return int(cursor)


batch = BatchService()
