"""All SQL about the near-relative registry."""

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select, update

from schemas.assessment import NearRelativeMatch
from service.auth.principal import Principal
from service.auth.scope import scoped
from service.crypto.sealed import keyring_of
from service.models import NearRelative
from service.pagination import newer_first_after
from service.repository import Repository

BLINDS = "_near_relative_blind"
"""The parameters of `NearRelativeRepository.any_active`, numbered: blind indexes of ID
numbers."""


class NearRelativeRepository(Repository):
    async def insert(self, registration: NearRelative) -> None:
        self.session.add(registration)
        await self.session.flush()

    async def get(
        self, registration_id: str, *, scope: Principal | str = ""
    ) -> NearRelative | None:
        # Registrations are kept per county: a township scope finds none (service/auth/scope.py).
        statement = scoped(
            select(NearRelative)
            .where(NearRelative.id == registration_id)
            .execution_options(populate_existing=True),
            scope,
            NearRelative.region_code,
        )
        return await self.session.scalar(statement)

    async def page(
        self,
        *,
        scope: Principal | str,
        limit: int,
        after: tuple[datetime, str] | None,
        revoked: bool | None = None,
    ) -> list[NearRelative]:
        """Newest first; `after` is the (registered_at, id) of the last item already seen;
        `revoked`: only the revoked (True) or those in force (False)."""
        statement = scoped(select(NearRelative), scope, NearRelative.region_code)
        if revoked is not None:
            gone = NearRelative.revoked_at.is_not(None)
            statement = statement.where(gone if revoked else ~gone)
        if after is not None:
            statement = statement.where(
                newer_first_after(NearRelative.registered_at, NearRelative.id, after)
            )
        statement = statement.order_by(NearRelative.registered_at.desc(), NearRelative.id.desc())
        return list(await self.session.scalars(statement.limit(limit)))

    async def revoke(
        self,
        registration_id: str,
        *,
        revoked_at: datetime,
        revoked_by: str,
        revoked_by_name: str | None,
        reason: str,
    ) -> bool:
        """Revoke an active registration; False when it was already revoked.

        One conditional statement, so two concurrent revocations cannot both succeed.
        """
        result = await self.session.execute(
            update(NearRelative)
            .where(NearRelative.id == registration_id, NearRelative.revoked_at.is_(None))
            .values(
                revoked_at=revoked_at,
                revoked_by=revoked_by,
                revoked_by_name=revoked_by_name,
                revoked_reason=reason,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def active_duplicate(self, registration: NearRelative) -> str | None:
        """The id of an active registration of the same relative, staff member and region.

        The relative is found through the blind index; the staff member's name is sealed,
        so it is compared here, among that relative's few registrations.
        """
        blind = keyring_of(self.session).blind(registration.relative_id_number)
        candidates = await self.session.scalars(
            select(NearRelative)
            .where(
                NearRelative.relative_id_number_blind == blind,
                NearRelative.staff_position == registration.staff_position,
                NearRelative.region_code == registration.region_code,
                NearRelative.revoked_at.is_(None),
            )
            .order_by(NearRelative.registered_at, NearRelative.id)
        )
        for candidate in candidates:
            if candidate.staff_name == registration.staff_name:
                return candidate.id
        return None

    @staticmethod
    @lru_cache(maxsize=32)
    def any_active(count: int) -> ColumnElement[bool]:
        """Whether any of `count` ID numbers has an active registration, as an expression
        to read within another statement (no round trip of its own), built once per count:
        the numbers' blind indexes are its parameters (`any_active_parameters`), one
        each. A list in one expanding parameter made SQLAlchemy render the whole statement
        it is read in anew at every execution (about 150 µs for a run's last settle on
        PostgreSQL)."""
        blind = NearRelative.relative_id_number_blind
        return (
            select(NearRelative.id)
            .where(
                blind.in_(
                    [bindparam(f"{BLINDS}_{index}", type_=blind.type) for index in range(count)]
                )
            )
            .where(NearRelative.revoked_at.is_(None))
            .exists()
        )

    def any_active_parameters(self, id_numbers: list[str]) -> dict[str, Any]:
        """The parameters of `any_active(len(id_numbers))` for these ID numbers."""
        keyring = keyring_of(self.session)
        return {
            f"{BLINDS}_{index}": keyring.blind(id_number)
            for index, id_number in enumerate(id_numbers)
        }

    async def matches(self, id_numbers: list[str]) -> tuple[NearRelativeMatch, ...]:
        """Active registrations of any of these ID numbers.

        Identical matches (same person, position and relationship registered twice) count
        once; the order is by code point, so it is the same on every database.
        """
        if not id_numbers:
            return ()
        keyring = keyring_of(self.session)
        by_blind = {keyring.blind(id_number): id_number for id_number in id_numbers}
        statement = (
            select(
                NearRelative.relative_id_number_blind,
                NearRelative.staff_position,
                NearRelative.relationship,
            )
            .distinct()
            .where(NearRelative.relative_id_number_blind.in_(list(by_blind)))
            .where(NearRelative.revoked_at.is_(None))
        )
        rows = sorted(
            (by_blind[blind], position, relation)
            for blind, position, relation in await self.session.execute(statement)
        )
        return tuple(
            NearRelativeMatch(id_number=id_number, staff_position=position, relationship=relation)
            for id_number, position, relation in rows
        )
