"""Creating, checking, listing and revoking API keys. Tokens are random; only their SHA-256
is stored, and no listing or answer ever shows it."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas import apikey as wire
from schemas.identity import hides_id_number
from service.auth.principal import Principal, Role, normalise_region_prefix, shown_region
from service.auth.repository import ApiKeyRepository, KeyFilter
from service.errors import Conflict, NotFound
from service.models import ApiKey
from service.models.base import utcnow
from service.pagination import decode_cursor, listing, next_cursor

TOKEN_PREFIX = "hd_"  # noqa: S105 - a visible prefix, not a secret
DEFAULT_LIFETIME = timedelta(days=90)
NAME_MAX = 128
REASON_MAX = 500


class ApiKeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such API key in the caller's region")


class ApiKeyRevoked(Conflict):
    slug = "api-key-revoked"

    def __init__(self, at: datetime | None) -> None:
        when = f" at {at.isoformat(timespec='seconds')}" if at is not None else ""
        super().__init__(f"This API key was already revoked{when}")


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a plain digest is enough (no slow KDF needed).
    return hashlib.sha256(token.encode()).hexdigest()


def clean_name(name: str) -> str:
    """A key's holder as stored: trimmed, 1 to 128 printable characters, no ID number."""
    name = " ".join(name.split())
    if not name:
        raise ValueError("the name must say whom the key belongs to; it cannot be blank")
    if len(name) > NAME_MAX:
        raise ValueError(f"the name is longer than {NAME_MAX} characters")
    if not name.isprintable():
        raise ValueError("the name holds a control character")
    if hides_id_number(name):
        # Shown in key lists, on every decision the key records and in the audit trail.
        raise ValueError("the name must not hold an ID number: say whom the key is for")
    return name


def key_status(key: ApiKey, now: datetime) -> wire.KeyStatus:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def principal_of(key: ApiKey) -> Principal:
    return Principal(
        key_id=key.id, name=key.name, role=Role(key.role), region_prefix=key.region_prefix
    )


def refusal_of(key: ApiKey | None, now: datetime) -> str | None:
    """Why this key may not call the API now (a problem's `detail`), or None: it may."""
    if key is None:
        return "The bearer token is unknown"
    status = key_status(key, now)
    if status == "revoked":
        return "This API key has been revoked"
    if status == "expired" and key.expires_at is not None:
        return expired(key.expires_at)
    return None


def expired(at: datetime) -> str:
    return f"This API key expired at {at.isoformat(timespec='seconds')}"


LONGEST_LIFETIME = timedelta(days=5 * 365)
"""The longest a key may be valid: long enough for a system's key, short enough that a
forgotten one ends."""


async def create_api_key(
    session: AsyncSession,
    *,
    role: Role,
    region: str,
    name: str | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its token (shown once, never stored). Without `expires_at` it is valid
    for 90 days; `name` (whom it belongs to) defaults to its role and region."""
    now = now or utcnow()
    expires_at = expires_at or now + DEFAULT_LIFETIME
    if expires_at <= now:
        raise ValueError("the expiry must be in the future")
    if expires_at > now + LONGEST_LIFETIME:
        raise ValueError(
            f"a key is valid for {LONGEST_LIFETIME.days // 365} years at most: no key stays "
            "valid forever (create a new one before it expires)"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    region_prefix = normalise_region_prefix(region)
    key = ApiKey(
        name=clean_name(name if name is not None else f"{role.value}-{region_prefix or '00'}"),
        role=role.value,
        region_prefix=region_prefix,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=expires_at,
    )
    await ApiKeyRepository.from_session(session).insert(key)
    return key, token


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    """Who holds `token`, read now (no cache); None for an unknown, revoked or expired key."""
    key = await ApiKeyRepository.from_session(session).by_token_hash(hash_token(token))
    if key is None or refusal_of(key, utcnow()) is not None:
        return None
    return principal_of(key)


async def revoke_api_key(
    session: AsyncSession, key_id: str, *, reason: str | None, region_prefix: str = ""
) -> ApiKey:
    """Revoke a key inside `region_prefix`: from now on (and in every process within
    HEDUI_PRINCIPAL_CACHE_S) it is refused. A second revocation is a conflict."""
    repository = ApiKeyRepository.from_session(session)
    key = await repository.get(key_id, region_prefix=region_prefix)
    if key is None:
        raise ApiKeyNotFound()
    reason = " ".join(reason.split())[:REASON_MAX] if reason else None
    if not await repository.revoke(key.id, at=utcnow(), reason=reason or None):
        await session.refresh(key)
        raise ApiKeyRevoked(key.revoked_at)
    await session.refresh(key)
    return key


def to_wire(key: ApiKey, now: datetime) -> wire.ApiKey:
    return wire.ApiKey(
        id=key.id,
        name=key.name,
        role=key.role,
        region=shown_region(key.region_prefix),
        status=key_status(key, now),
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        revoked_reason=key.revoked_reason,
    )


async def page_api_keys(
    session: AsyncSession, principal: Principal, query: wire.ApiKeyQuery
) -> wire.ApiKeyPage:
    """Keys inside the caller's region, newest first."""
    now = utcnow()
    listed = listing("apikeys", query)
    after = decode_cursor(query.cursor, listed) if query.cursor else None
    where = KeyFilter(
        region_prefix=principal.narrowed(query.region),
        status=query.status,
        role=query.role,
        name_contains=query.name,
    )
    keys = await ApiKeyRepository.from_session(session).page(
        where, now=now, limit=query.limit + 1, after=after
    )
    return wire.ApiKeyPage(
        items=[to_wire(key, now) for key in keys[: query.limit]],
        next_cursor=next_cursor(keys, query.limit, lambda key: (key.created_at, key.id), listed),
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
    nobody (no header, not a bearer token, unknown, revoked or expired)."""
    token = bearer_token(authorization)
    if token is None:
        return None
    async with session_factory() as session:
        return await authenticate(session, token)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a token stands for now: a principal, or why it is refused."""

    principal: Principal | None
    refusal: str | None = None
