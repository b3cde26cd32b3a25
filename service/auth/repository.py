"""All SQL about API keys."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from schemas.apikey import KeyStatus
from service.auth.scope import scoped
from service.models import ApiKey
from service.pagination import newer_first_after
from service.repository import Repository


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """Which keys a listing shows; every field narrows it (None: no condition)."""

    region_prefix: str = ""
    """Keys whose region lies inside this one (a listing never shows a wider key)."""
    status: KeyStatus | None = None
    role: str | None = None
    name_contains: str | None = None


def status_condition(status: KeyStatus, now: datetime) -> ColumnElement[bool]:
    usable_until = or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)
    if status == "revoked":
        return ApiKey.revoked_at.is_not(None)
    if status == "expired":
        return and_(ApiKey.revoked_at.is_(None), ApiKey.expires_at <= now)
    return and_(ApiKey.revoked_at.is_(None), usable_until)


class ApiKeyRepository(Repository):
    async def insert(self, key: ApiKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def by_token_hash(self, token_hash: str) -> ApiKey | None:
        """The key of a token, revoked or expired ones included (the caller says why not)."""
        return await self.session.scalar(select(ApiKey).where(ApiKey.token_hash == token_hash))

    async def get(self, key_id: str, *, region_prefix: str = "") -> ApiKey | None:
        # A key's region is its creator's scope column: a key is in the scope of
        # `region_prefix` when its own prefix starts with it.
        statement = select(ApiKey).where(ApiKey.id == key_id)
        return await self.session.scalar(
            scoped(statement, region_prefix, ApiKey.region_prefix).execution_options(
                populate_existing=True
            )
        )

    async def named(self, name: str) -> ApiKey | None:
        """The first key (by id) held under `name`."""
        return await self.session.scalar(
            select(ApiKey).where(ApiKey.name == name).order_by(ApiKey.id).limit(1)
        )

    async def with_id_prefix(self, prefix: str, *, limit: int = 2) -> list[ApiKey]:
        """Keys whose id starts with `prefix` (as `hedui apikey list` shows them)."""
        statement = (
            select(ApiKey)
            .where(ApiKey.id.startswith(prefix, autoescape=True))
            .order_by(ApiKey.id)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def page(
        self,
        where: KeyFilter,
        *,
        now: datetime,
        limit: int | None,
        after: tuple[datetime, str] | None = None,
    ) -> list[ApiKey]:
        """Newest first; `after` is the (created_at, id) of the last key already seen."""
        statement = scoped(select(ApiKey), where.region_prefix, ApiKey.region_prefix)
        if where.status is not None:
            statement = statement.where(status_condition(where.status, now))
        if where.role is not None:
            statement = statement.where(ApiKey.role == where.role)
        if where.name_contains:
            statement = statement.where(
                func.lower(ApiKey.name).contains(where.name_contains.lower(), autoescape=True)
            )
        if after is not None:
            statement = statement.where(newer_first_after(ApiKey.created_at, ApiKey.id, after))
        statement = statement.order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        if limit is not None:
            statement = statement.limit(limit)
        return list(await self.session.scalars(statement))

    async def revoke(self, key_id: str, *, at: datetime, reason: str | None) -> bool:
        """Revoke a key that is not revoked yet; False when it already was.

        One conditional statement, so two concurrent revocations cannot both succeed.
        """
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def touch(self, key_id: str, *, at: datetime, every: timedelta) -> None:
        """Note a use of the key at `at`, unless one within `every` is noted already (by
        any process): a no-op statement rather than a second write."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= at - every),
            )
            .values(last_used_at=at)
            .execution_options(synchronize_session=False)
        )
