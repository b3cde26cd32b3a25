"""The near-relative registry: the decisions; SQL lives in the repository."""

from typing import Any

import structlog
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import near_relative as wire
from schemas.assessment import NearRelativeMatch
from schemas.identity import mask_id_number, mask_name, redact_id_numbers
from schemas.verification import name_in
from service.auth.principal import Principal
from service.errors import Conflict, InvalidRequest, NotFound, OutsideRegion
from service.models import NearRelative
from service.models.base import new_id, utcnow
from service.near_relative.repository import NearRelativeRepository
from service.pagination import decode_cursor, listing, next_cursor

log = structlog.get_logger(__name__)


class NearRelativeNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such near-relative registration")


class NearRelativeRevoked(Conflict):
    slug = "near-relative-revoked"

    def __init__(self) -> None:
        super().__init__("This registration is already revoked")


class NearRelativeDuplicate(Conflict):
    slug = "near-relative-duplicate"

    def __init__(self, existing_id: str) -> None:
        super().__init__(
            f"This relative is already registered for this staff member ({existing_id})"
        )


class NearRelativeService:
    async def create(
        self, session: AsyncSession, principal: Principal, body: wire.NearRelativeCreate
    ) -> wire.NearRelative:
        if not principal.covers(body.region_code):
            raise OutsideRegion()
        _no_name_in(body.staff_position, body.staff_name, body.relative_name, "staff_position")
        registration = NearRelative(
            id=new_id(),
            registered_at=utcnow(),
            region_code=body.region_code,
            staff_name=body.staff_name,
            staff_position=body.staff_position,
            relative_id_number=body.relative_id_number,
            relative_name=body.relative_name,
            relationship=body.relationship,
            registered_by=principal.key_id,
            registered_by_name=principal.name,
        )
        repository = NearRelativeRepository.from_session(session)
        existing = await repository.active_duplicate(registration)
        if existing is not None:
            # A second active copy would survive the revocation of the first.
            raise NearRelativeDuplicate(existing)
        await repository.insert(registration)
        log.info(
            "near_relative_registered",
            registration_id=registration.id,
            region_code=registration.region_code,
            registered_by=principal.key_id,
        )
        return to_wire(registration)

    async def get(
        self, session: AsyncSession, principal: Principal, registration_id: str
    ) -> NearRelative:
        repository = NearRelativeRepository.from_session(session)
        registration = await repository.get(registration_id, scope=principal)
        if registration is None:
            # Outside the caller's region looks exactly like absent (no existence oracle).
            raise NearRelativeNotFound()
        return registration

    async def page(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        limit: int,
        cursor: str | None,
        region_code: str | None = None,
        revoked: bool | None = None,
    ) -> wire.NearRelativePage:
        listed = listing("near-relatives", {"region_code": region_code, "revoked": revoked})
        rows = await NearRelativeRepository.from_session(session).page(
            scope=principal.narrowed(region_code),
            revoked=revoked,
            limit=limit + 1,
            after=decode_cursor(cursor, listed) if cursor else None,
        )
        return wire.NearRelativePage(
            items=[to_wire(row) for row in rows[:limit]],
            next_cursor=next_cursor(rows, limit, lambda row: (row.registered_at, row.id), listed),
        )

    async def revoke(
        self,
        session: AsyncSession,
        principal: Principal,
        registration_id: str,
        body: wire.NearRelativeRevoke,
    ) -> wire.NearRelative:
        """Mark a registration revoked (who, when, why); registrations are never deleted."""
        registration = await self.get(session, principal, registration_id)
        if registration.revoked_at is not None:
            raise NearRelativeRevoked()
        _no_name_in(body.reason, registration.staff_name, registration.relative_name, "reason")
        repository = NearRelativeRepository.from_session(session)
        revoked = await repository.revoke(
            registration.id,
            revoked_at=utcnow(),
            revoked_by=principal.key_id,
            revoked_by_name=principal.name,
            reason=body.reason,
        )
        if not revoked:  # a concurrent revocation got there first
            raise NearRelativeRevoked()
        log.info(
            "near_relative_revoked", registration_id=registration.id, revoked_by=principal.key_id
        )
        return to_wire(await self.get(session, principal, registration.id))


def _no_name_in(text: str, staff_name: str, relative_name: str, field: str) -> None:
    """422 when the free text of a registration names its staff member or the relative:
    names are sealed and shown masked, the text as written."""
    named = name_in(text, [staff_name, relative_name])
    if named is not None:
        whose = "the staff member" if named == 1 else "the relative"
        raise InvalidRequest.at(
            ["body", field],
            f"contains the name of {whose}: it is shown as written, so it must name nobody",
        )


async def near_relative_matches(
    session: AsyncSession, id_numbers: list[str]
) -> tuple[NearRelativeMatch, ...]:
    """Active registrations of any of these household members, for the scorer.

    Covers every region: a relative of an official elsewhere is still a relative. The
    result carries full ID numbers, so it stays inside the service (the scorer masks).
    """
    return await NearRelativeRepository.from_session(session).matches(_normalised(id_numbers))


def any_near_relative(
    session: AsyncSession, id_numbers: list[str]
) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """Whether `near_relative_matches` would find any, as an expression to read within
    another statement of the same transaction, and its parameters: a household with none
    (the usual case) costs no statement of its own, and what it reads is as current as the
    statement. One expression for every household of as many members, so the statement
    is built once."""
    normalised = _normalised(id_numbers)
    repository = NearRelativeRepository.from_session(session)
    return repository.any_active(len(normalised)), repository.any_active_parameters(normalised)


def _normalised(id_numbers: list[str]) -> list[str]:
    return sorted({id_number.strip().upper() for id_number in id_numbers})


def to_wire(registration: NearRelative) -> wire.NearRelative:
    """The caller's view: ID number and names masked, free text redacted."""
    return wire.NearRelative(
        id=registration.id,
        region_code=registration.region_code,
        staff_name=mask_name(registration.staff_name),
        staff_position=redact_id_numbers(registration.staff_position),
        relative_id_number=mask_id_number(registration.relative_id_number),
        relative_name=mask_name(registration.relative_name),
        relationship=registration.relationship,
        registered_by=registration.registered_by_name or registration.registered_by,
        registered_by_key_id=registration.registered_by,
        registered_at=registration.registered_at,
        revoked_at=registration.revoked_at,
        revoked_by=registration.revoked_by_name or registration.revoked_by,
        revoked_by_key_id=registration.revoked_by,
        revoked_reason=(
            redact_id_numbers(registration.revoked_reason)
            if registration.revoked_reason is not None
            else None
        ),
    )


near_relative = NearRelativeService()
