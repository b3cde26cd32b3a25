"""Creating and checking API keys. Tokens are random; only their SHA-256 is stored."""

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Principal, Role, normalise_region_prefix
from service.models import ApiKey

TOKEN_PREFIX = "hd_"  # noqa: S105 - a visible prefix, not a secret


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a plain digest is enough (no slow KDF needed).
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_key(
    session: AsyncSession, *, role: Role, region: str, name: str | None = None
) -> tuple[ApiKey, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name or f"{role.value}-{region}",
        role=role.value,
        region_prefix=normalise_region_prefix(region),
        token_hash=hash_token(token),
    )
    session.add(key)
    await session.flush()
    return key, token


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    key = await session.scalar(
        select(ApiKey).where(ApiKey.token_hash == hash_token(token), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    return Principal(
        key_id=key.id, name=key.name, role=Role(key.role), region_prefix=key.region_prefix
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def principal_for(
    session_factory: async_sessionmaker[AsyncSession], authorization: str | None
) -> Principal | None:
    """Who sends this `Authorization` header, in a short session of its own; None when
    nobody (no header, not a bearer token, unknown or revoked)."""
    token = bearer_token(authorization)
    if token is None:
        return None
    async with session_factory() as session:
        return await authenticate(session, token)
