"""Finding the verifications a person appears in, through the blind index of the ID number."""

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import person as wire
from schemas import verification as verification_wire
from service.auth.principal import Principal
from service.crypto.sealed import keyring_of
from service.pagination import decode_cursor, listing, next_cursor
from service.verification.repository import VerificationRepository
from service.verification.service import to_wire


class PersonService:
    def blind(self, session: AsyncSession, id_number: str) -> str:
        """The person by the keyed blind index of their ID number (what the audit trail
        finds a lookup of them by)."""
        return keyring_of(session).blind(id_number)

    async def verifications(
        self, session: AsyncSession, principal: Principal, body: wire.PersonSearch
    ) -> verification_wire.VerificationPage:
        """Newest first, within the caller's region, members masked as everywhere."""
        repository = VerificationRepository.from_session(session)
        blind = keyring_of(session).blind(body.id_number)
        # The person searched for by the blind index of their ID number (keyed): a cursor
        # is bound to its person, and says nothing of who that is to whoever lacks the key.
        listed = listing("people", {"member": blind})
        rows = await repository.page(
            scope=principal,
            where=verification_wire.VerificationFilter(),
            limit=body.limit + 1,
            after=decode_cursor(body.cursor, listed, "body") if body.cursor else None,
            member_blind=blind,
        )
        page = rows[: body.limit]
        decisions = await repository.decisions([row.id for row in page])
        return verification_wire.VerificationPage(
            items=[to_wire(row, decisions.get(row.id, [])) for row in page],
            next_cursor=next_cursor(rows, body.limit, lambda row: (row.created_at, row.id), listed),
        )


person = PersonService()
