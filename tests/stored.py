"""Rows a test needs in the database before it starts: a caseworker's key, a stored
verification (through the service, as an API request would store it)."""

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from schemas.verification import VerificationCreate
from service.auth.principal import Principal, Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from service.policy.catalog import PolicyCatalog
from service.verification.service import verification as verification_service
from tests.factories import make_id_number, member, verification_body


async def api_tokens(
    database_url: str, *roles: str, region: str = "53", named: str | None = None
) -> dict[str, str]:
    """A new key of `region` for each role, committed in the database at `database_url`:
    its token by role. `named`: each key's holder is `named` and the role ("Panlong
    approver"); else the key's default name."""
    engine = create_engine(database_url)
    tokens = {}
    try:
        async with create_session_factory(engine)() as session:
            for role in roles:
                _, tokens[role] = await create_api_key(
                    session,
                    role=Role(role),
                    region=region,
                    name=None if named is None else f"{named} {role}",
                )
            await session.commit()
    finally:
        await engine.dispose()
    return tokens


async def caseworker_token(database_url: str) -> str:
    """A new caseworker key for province 53, committed in the database at `database_url`."""
    return (await api_tokens(database_url, "caseworker"))["caseworker"]


async def store_verification(
    session: AsyncSession,
    sources: Sequence[tuple[str, str]],
    *,
    today: date = date(2026, 11, 26),
) -> str:
    """A one-member verification in Kunming (530103) with `sources` (name, version) pending,
    stored in `session` (not committed); its id."""
    key, _ = await create_api_key(session, role=Role.caseworker, region="53")
    body = VerificationCreate.model_validate(
        verification_body([member(make_id_number("530103"))], region_code="530103")
    )
    created, _ = await verification_service.prepare(
        session,
        principal=Principal(key.id, key.name, Role.caseworker, "53"),
        body=body,
        catalog=PolicyCatalog.load(),
        sources=list(sources),
        today=today,
    )
    await verification_service.store(session, created)
    return created.id
