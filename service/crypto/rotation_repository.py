"""All SQL of a key rotation: its own row, and the sealed rows it re-seals."""

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, and_, func, or_, select, update

from service.crypto.keyring import FORMAT
from service.crypto.sealed import sealed_fields
from service.models import KeyRotation
from service.repository import Repository


def table_of(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def primary_key_of(model: type) -> Any:
    columns = list(table_of(model).primary_key.columns)
    if len(columns) != 1:
        raise RuntimeError(f"{model.__name__}: a rotation orders by a one-column primary key")
    return columns[0]


def _stale(model: type, kid: str) -> Any:
    """Rows of `model` with a sealed value under another key than `kid`."""
    table = table_of(model)
    prefix = f"{FORMAT}:{kid}:%"
    return or_(
        *(
            and_(table.c[field.column].is_not(None), ~table.c[field.column].like(prefix))
            for field in sealed_fields(model)
        )
    )


class RotationRepository(Repository):
    async def unfinished(self, done: str) -> KeyRotation | None:
        """The oldest rotation not in state `done`."""
        return await self.session.scalar(
            select(KeyRotation)
            .where(KeyRotation.state != done)
            .order_by(KeyRotation.started_at)
            .limit(1)
        )

    async def latest(self) -> KeyRotation | None:
        return await self.session.scalar(
            select(KeyRotation).order_by(KeyRotation.started_at.desc()).limit(1)
        )

    async def add(self, rotation: KeyRotation) -> None:
        self.session.add(rotation)
        await self.session.flush()

    async def save(self, kid: str, values: Mapping[str, Any]) -> None:
        """The rotation to `kid`'s progress."""
        await self.session.execute(
            update(KeyRotation).where(KeyRotation.target_kid == kid).values(**values)
        )

    async def stale_count(self, models: Sequence[type], kid: str) -> int:
        """How many rows of `models` still hold a value sealed with another key than `kid`."""
        total = 0
        for model in models:
            statement = select(func.count()).select_from(table_of(model)).where(_stale(model, kid))
            total += int(await self.session.scalar(statement) or 0)
        return total

    async def stale_rows(
        self, model: type, kid: str, after: Any, size: int
    ) -> Sequence[Row[Any, *tuple[Any, ...]]]:
        """Up to `size` rows of `model` after primary key `after` holding a value sealed
        with another key than `kid`, in key order: the key, the row's binding columns
        (`SEALED_ROW`) and every sealed column."""
        table = table_of(model)
        key = primary_key_of(model)
        statement = (
            select(
                key,
                *(table.c[name] for name in model.SEALED_ROW),  # type: ignore[attr-defined]
                *(table.c[field.column] for field in sealed_fields(model)),
            )
            .where(_stale(model, kid))
            .order_by(key)
            .limit(size)
        )
        if after is not None:
            statement = statement.where(key > after)
        rows: Sequence[Row[Any, *tuple[Any, ...]]] = (await self.session.execute(statement)).all()
        return rows

    async def reseal(
        self, model: type, key_value: Any, old: Mapping[str, str | None], new: Mapping[str, Any]
    ) -> int:
        """Write `new` sealed values to the row, if it still holds `old` (a concurrent write
        wins: it is sealed with the new key already); 1 when it was written, else 0."""
        table = table_of(model)
        result = await self.session.execute(
            update(table)
            .where(
                primary_key_of(model) == key_value,
                *(table.c[column] == value for column, value in old.items() if value is not None),
            )
            .values(**new)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
