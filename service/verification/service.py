"""Verification intake and reading: the decisions; SQL lives in the repository."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from schemas import verification as wire
from schemas.identity import mask_id_number, mask_name
from schemas.problem import ProblemError
from service.auth.principal import Principal
from service.auth.scope import county_in_scope, narrow
from service.bulk import Rows, insert_together
from service.crypto.sealed import keyring_of
from service.errors import Forbidden, InvalidRequest, OutsideRegion, VerificationNotFound
from service.models import Decision, Member, SourceResult, Verification
from service.models.base import new_id, transient, utcnow
from service.pagination import decode_cursor, listing, next_cursor
from service.policy.arrangement import ArrangementError, arrangement
from service.policy.catalog import PolicyCatalog
from service.recipient.calendar import add_months, authorization_expired
from service.verification.repository import VerificationRepository

if TYPE_CHECKING:
    from service.jobs.workflow import RunResult
    from service.verification.fanout import FetchOutcome

FUTURE_AS_OF = (
    "cannot be in the future: a household is scored by the policy in force today or on a "
    "past date; a standard yet to take effect is what POST /v1/policy/simulate is for"
)


def request_hash(session: AsyncSession, body: wire.VerificationCreate) -> str:
    """The request's fingerprint, keyed: HMAC-SHA256 (blind-index key) of the SHA-256 of the
    canonical body, so a stored fingerprint cannot be matched against guessed bodies."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return keyring_of(session).keyed_hash("request", digest.encode())


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A request's `Idempotency-Key` and its body's fingerprint (`request_hash`), computed
    once for the lookup of an earlier request and the row stored for later ones."""

    key: str
    fingerprint: str

    @classmethod
    def of(
        cls, session: AsyncSession, key: str | None, body: wire.VerificationCreate
    ) -> Idempotency | None:
        return None if key is None else cls(key, request_hash(session, body))


def refuse_member_names(text: str | None, names: Sequence[str], loc: list[str | int]) -> None:
    """422 at `loc` when `text`, the caller's own words stored and shown as written (a
    reference, a reason, a note), holds the name of one of `names`: a household's names
    are sealed wherever hedui stores them, and free text is not. Only the names hedui
    knows can be found; the field's description asks for none at all."""
    if text and (named := wire.name_in(text, names)):
        raise InvalidRequest.at(
            loc,
            f"contains the name of member {named}: it is stored and shown as written (in "
            "lists, webhooks or the audit trail), so it must name nobody (refer to a member "
            "by relation)",
        )


def _refuse_future_dates(body: wire.VerificationCreate, today: date) -> None:
    if body.consent.signed_on > today:
        raise InvalidRequest.at(["body", "consent", "signed_on"], "cannot be in the future")
    if body.as_of is not None and body.as_of > today:
        # A typo (2062 for 2026) would otherwise be scored by whatever policy is the
        # latest, silently; a standard yet to come is what a simulation is for.
        raise InvalidRequest.at(["body", "as_of"], FUTURE_AS_OF)


class VerificationService:
    async def prepare(
        self,
        session: AsyncSession,
        *,
        principal: Principal,
        body: wire.VerificationCreate,
        catalog: PolicyCatalog,
        sources: list[tuple[str, str]],
        today: date,
        idempotency: Idempotency | None = None,
        submitted: bool = True,
    ) -> tuple[Verification, bool]:
        """Check a request and build its verification, with one pending row per source.

        Returns the verification and whether it is new (False: an earlier request with the
        same `Idempotency-Key` made it, and that stored one is returned unchanged). A new
        one is not stored yet: see `store`, which the caller runs while partners are asked.
        """
        if idempotency is not None:
            earlier = await self.replay(session, principal, idempotency)
            if earlier is not None:
                return earlier, False

        if not county_in_scope(principal, body.region_code):
            raise OutsideRegion()
        if not principal.covers(body.region_code, body.township_code):
            # A township key files for its own township only, and names it.
            if body.township_code is None:
                detail = (
                    "township_code is required: this API key files for township "
                    f"{principal.region_prefix} only"
                )
                why = f"required for a key of township {principal.region_prefix}"
            else:
                detail = "township_code is outside the township of this API key"
                why = "outside the key's township"
            raise Forbidden(detail, errors=[ProblemError(loc=["body", "township_code"], msg=why)])
        _refuse_future_dates(body, today)
        if submitted:
            names = [member.name for member in body.members]
            refuse_member_names(body.reference, names, ["body", "reference"])
        as_of = body.as_of or today
        resolved = catalog.resolve(body.region_code, body.program, body.area, as_of)
        if resolved is None:
            raise InvalidRequest.at(
                ["body", "as_of" if body.as_of else "region_code"],
                f"no {body.program}/{body.area} policy is in force for this region on {as_of}",
            )
        try:
            arrangement(resolved.parameters, body.support_mode, body.care_grade)
        except ArrangementError as error:
            raise InvalidRequest.at(["body", error.field], error.problem) from error
        # No query without an authorization in force today, by today's policy (the
        # partners are asked now, whatever `as_of` the household is scored under).
        in_force = (
            resolved
            if as_of == today
            else catalog.resolve(body.region_code, body.program, body.area, today) or resolved
        )
        months = in_force.parameters.consent_valid_months
        if submitted and months:
            expires_on = add_months(body.consent.signed_on, months)
            if authorization_expired(expires_on, today):
                raise InvalidRequest.at(
                    ["body", "consent", "signed_on"],
                    f"the authorization ran out on {expires_on}: this region's policy holds "
                    f"one good for {months} months, and no partner is asked without one in "
                    "force (have the household sign a new one)",
                )

        verification = transient(
            Verification,
            id=new_id(),
            created_at=utcnow(),
            reference=body.reference,
            program=body.program,
            region_code=body.region_code,
            township_code=body.township_code,
            area=body.area,
            as_of=as_of,
            consent_document_id=body.consent.document_id,
            consent_signed_on=body.consent.signed_on,
            support_mode=body.support_mode,
            care_grade=body.care_grade,
            created_by=principal.key_id,
            status=wire.VerificationStatus.queued.value,
        )
        # The verification is never added to a session (`store` inserts it with Core
        # statements), so its rows are handed over as they are, without the collection and
        # back-reference events of an ORM append: half of building it.
        set_committed_value(
            verification,
            "members",
            [_member(position, member) for position, member in enumerate(body.members)],
        )
        # The plan is fixed now: a connector registered later does not change this request.
        set_committed_value(
            verification,
            "sources",
            [_pending_source(name, version) for name, version in sources],
        )
        return verification, True

    async def store(
        self,
        session: AsyncSession,
        verification: Verification,
        *,
        idempotency: Idempotency | None = None,
        claim: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert a verification built by `prepare` (the caller commits); `claim`: as
        `VerificationRepository.insert`."""
        await insert_together(
            session,
            self.rows_to_store(session, verification, idempotency=idempotency, claim=claim),
        )

    def rows_to_store(
        self,
        session: AsyncSession,
        verification: Verification,
        *,
        idempotency: Idempotency | None = None,
        claim: Mapping[str, Any] | None = None,
    ) -> list[Rows]:
        """What `store` inserts, for a caller that inserts it together with other rows
        (`service.bulk.insert_together`)."""
        repository = VerificationRepository.from_session(session)
        rows = repository.rows_of([verification], claim=claim)
        if idempotency is not None:
            rows.append(
                repository.idempotency_key_rows(
                    api_key_id=verification.created_by,
                    key=idempotency.key,
                    request_hash=idempotency.fingerprint,
                    verification_id=verification.id,
                )
            )
        return rows

    async def store_many(
        self,
        session: AsyncSession,
        verifications: list[Verification],
        *,
        claim: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert verifications built by `prepare`, without idempotency keys, in one
        statement on PostgreSQL and three on SQLite however many (the caller commits);
        `claim`: as `VerificationRepository.insert`."""
        await VerificationRepository.from_session(session).insert_many(verifications, claim=claim)

    async def replay(
        self, session: AsyncSession, principal: Principal, idempotency: Idempotency
    ) -> Verification | None:
        """The verification an earlier request with this key created, if any."""
        repository = VerificationRepository.from_session(session)
        earlier = await repository.idempotency_key(principal.key_id, idempotency.key)
        if earlier is None:
            return None
        if earlier.request_hash != idempotency.fingerprint:
            raise InvalidRequest.at(
                ["header", "Idempotency-Key"], "already used for a different request body"
            )
        return await repository.get(earlier.verification_id)

    async def get(
        self, session: AsyncSession, principal: Principal, verification_id: str
    ) -> Verification:
        repository = VerificationRepository.from_session(session)
        verification = await repository.get(verification_id, scope=principal)
        if verification is None:
            # Outside the caller's region looks exactly like absent (no existence oracle).
            raise VerificationNotFound()
        return verification

    async def read(
        self, session: AsyncSession, principal: Principal, verification_id: str
    ) -> wire.Verification:
        verification = await self.get(session, principal, verification_id)
        decisions = await VerificationRepository.from_session(session).decisions([verification.id])
        return to_wire(verification, decisions.get(verification.id, []))

    async def page(
        self,
        session: AsyncSession,
        principal: Principal,
        where: wire.VerificationFilter,
    ) -> wire.VerificationPage:
        repository = VerificationRepository.from_session(session)
        limit = where.limit
        listed = listing("verifications", where)
        rows = await repository.page(
            scope=narrow(principal.narrowed(where.region_code), where.township_code),
            where=where,
            limit=limit + 1,
            after=decode_cursor(where.cursor, listed) if where.cursor else None,
        )
        page = rows[:limit]
        decisions = await repository.decisions([row.id for row in page])
        return wire.VerificationPage(
            items=[to_wire(row, decisions.get(row.id, [])) for row in page],
            next_cursor=next_cursor(rows, limit, lambda row: (row.created_at, row.id), listed),
        )


def _member(position: int, given: wire.MemberCreate) -> Member:
    member = transient(Member, position=position, relation=given.relation)
    member.id_number = given.id_number
    member.name = given.name
    member.declared_monthly_income = given.declared_monthly_income
    return member


def _pending_source(name: str, version: str) -> SourceResult:
    source = transient(SourceResult, source=name, connector_version=version, status="pending")
    source.records = []
    return source


def finished_view(verification: Verification, result: RunResult) -> wire.Verification:
    """The final state of a verification this request created and waited for.

    `verification` is the transient object the request inserted; the run's result is what
    the runner committed, so nothing needs to be read back. The view is built from both,
    the object left as it is (setting its attributes cost more than the view itself).
    """
    outcomes = {outcome.source: outcome for outcome in result.outcomes}
    # Only what the caller's view shows: the records and a parked question's token are
    # stored already and are not part of it (serialising the records cost more).
    sources = [_source_state(outcomes.get(row.source, row)) for row in verification.sources]
    return _view(
        verification,
        status=result.status,
        completed_at=result.completed_at,
        recommendation=result.recommendation,
        sources=sources,
        decisions=[],
        withdrawal=None,
    )


def to_wire(verification: Verification, decisions: list[Decision]) -> wire.Verification:
    """The caller's view: every member masked."""
    return _view(
        verification,
        status=verification.status,
        completed_at=verification.completed_at,
        recommendation=verification.recommendation,
        sources=[_source_state(row) for row in verification.sources],
        decisions=[decision_to_wire(decision) for decision in decisions],
        withdrawal=withdrawal_to_wire(verification),
    )


def _view(
    verification: Verification,
    *,
    status: str,
    completed_at: datetime | None,
    recommendation: str | None,
    sources: list[wire.SourceState],
    decisions: list[wire.Decision],
    withdrawal: wire.Withdrawal | None,
) -> wire.Verification:
    return wire.Verification(
        id=verification.id,
        reference=verification.reference,
        program=verification.program,
        region_code=verification.region_code,
        township_code=verification.township_code,
        area=verification.area,
        as_of=verification.as_of,
        status=wire.VerificationStatus(status),
        created_at=verification.created_at,
        completed_at=completed_at,
        support_mode=verification.support_mode,
        care_grade=verification.care_grade,
        members=[
            wire.Member(
                id_number=mask_id_number(member.id_number),
                name=mask_name(member.name),
                relation=member.relation,
                declared_monthly_income=member.declared_monthly_income,
            )
            for member in verification.members
        ],
        sources=sources,
        recommendation=recommendation,
        decisions=decisions,
        withdrawal=withdrawal,
    )


def _source_state(row: SourceResult | FetchOutcome) -> wire.SourceState:
    """A source's state as stored, or as a run's outcome says it was stored."""
    return wire.SourceState(
        source=row.source,
        status=wire.SourceStatus(row.status),
        detail=row.detail,
        fetched_at=row.fetched_at,
        duration_ms=row.duration_ms,
        attempts=row.attempts or None,
    )


def withdrawal_to_wire(verification: Verification) -> wire.Withdrawal | None:
    if verification.withdrawn_at is None or verification.withdrawn_by is None:
        return None
    return wire.Withdrawal(
        withdrawn_at=verification.withdrawn_at,
        withdrawn_by=verification.withdrawn_by_name or verification.withdrawn_by,
        withdrawn_by_key_id=verification.withdrawn_by,
        reason=verification.withdrawal_reason,
        status_before=wire.VerificationStatus(verification.withdrawn_from or "queued"),
    )


def decision_to_wire(decision: Decision) -> wire.Decision:
    return wire.Decision(
        id=decision.id,
        verification_id=decision.verification_id,
        decision=decision.decision,
        reason=decision.reason,
        decided_by=decision.decided_by_name or decision.decided_by,
        decided_by_key_id=decision.decided_by,
        decided_at=decision.decided_at,
        report_hash=decision.report_hash,
        policy_version=decision.policy_version,
        monthly_benefit=decision.monthly_benefit,
        one_off_amount=decision.one_off_amount,
        recipient_id=decision.recipient_id,
    )


verification = VerificationService()
