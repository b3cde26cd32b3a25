"""seal what the later tables kept in the clear: declared incomes, benefits, warning
evidence, webhook signing secrets

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 17:00:00

An audit of every table after encryption at rest found these still in the clear:

- `verification_members.declared_monthly_income`: each member's declared income;
- `recipients.monthly_benefit`, `warnings.benefit_before` / `benefit_after`: a benefit is
  the standard less the per-capita income, so it tells the household's income;
- `warnings.before` / `after`: the evidence (plates and vehicle values, pension amounts,
  financial assets, employers, property certificates);
- `webhooks.secret`: whoever reads it can sign events that a case-management system
  trusts. It must be recoverable to sign deliveries, so it is sealed, not hashed.

Each becomes a `<column>_sealed` text column, sealed as new rows are (AES-256-GCM bound to
table, column, row and key id), with the data keys already in the database, unwrapped by
the deployment's key-encryption key (`HEDUI_KEK`, `HEDUI_KEY_FILE` or the default key file
that `hedui serve` would use). A database without such rows needs no key. The plaintext
columns are dropped afterwards.

Columns are added and dropped in place (`ALTER TABLE ... DROP COLUMN`, SQLite 3.35 or
later), never by rebuilding a table: on SQLite a rebuilt `recipients` or `webhooks` table
would cascade-delete the re-checks, warnings and deliveries that refer to it. For the same
reason the sealed columns that are required are made NOT NULL on PostgreSQL only (SQLite
cannot add the constraint in place; the ORM never writes them empty).
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 1000

# table -> (columns that name the row, in `SEALED_ROW` order; primary key;
#           [(plaintext column, codec, required)])
SEALED: dict[str, tuple[tuple[str, ...], str, list[tuple[str, str, bool]]]] = {
    "verification_members": (
        ("verification_id", "position"),
        "id",
        [("declared_monthly_income", "money", True)],
    ),
    "recipients": (("id",), "id", [("monthly_benefit", "money", False)]),
    "warnings": (
        ("id",),
        "id",
        [
            ("before", "json", True),
            ("after", "json", True),
            ("benefit_before", "money", False),
            ("benefit_after", "money", False),
        ],
    ),
    "webhooks": (("id",), "id", [("secret", "text", True)]),
}

_TYPES: dict[str, Callable[[], Any]] = {
    "money": lambda: sa.Numeric(16, 2),
    "json": sa.JSON,
    "text": sa.Text,
}


def _kek() -> Any:
    kek = op.get_context().config.attributes.get("kek")  # type: ignore[union-attr]
    if kek is not None:
        return kek
    from service.config import Settings
    from service.crypto.kek import load_kek

    settings = Settings()
    return load_kek(
        kek=settings.kek.get_secret_value() if settings.kek else None,
        key_file=settings.key_file,
        database_url=settings.database_url,
    )


def _keyring(connection: sa.Connection) -> Any:
    """The database's keyring; on a database whose keys were never made (rows written
    before any process opened it), the first data key and the blind-index key."""
    from service.crypto.keyring import Keyring, new_key
    from service.crypto.store import (
        ACTIVE,
        DATA,
        INDEX,
        INDEX_KID,
        PRIMARY,
        keys_from_rows,
        wrap,
    )

    kek = _kek()
    keys = sa.table(
        "data_keys",
        sa.column("kid", sa.String()),
        sa.column("purpose", sa.String()),
        sa.column("state", sa.String()),
        sa.column("wrapped", sa.Text()),
        sa.column("kek_id", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = connection.execute(sa.select(keys).order_by(keys.c.created_at)).all()
    if not rows:
        now = datetime.now(UTC)
        connection.execute(
            keys.insert(),
            [
                {
                    "kid": kid,
                    "purpose": purpose,
                    "state": state,
                    "wrapped": wrap(kek, kid, purpose, new_key()),
                    "kek_id": kek.kek_id,
                    "created_at": now,
                }
                for kid, purpose, state in (("k1", DATA, PRIMARY), (INDEX_KID, INDEX, ACTIVE))
            ],
        )
        rows = connection.execute(sa.select(keys).order_by(keys.c.created_at)).all()
    return Keyring(*keys_from_rows(kek, rows))  # type: ignore[arg-type]


def _rows_exist(connection: sa.Connection) -> bool:
    return any(
        connection.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first()  # noqa: S608 - fixed names
        for table in SEALED
    )


def _chunks(
    connection: sa.Connection, table: sa.TableClause, key: str
) -> Iterator[list[sa.Row[Any]]]:
    """Every row of `table`, a chunk at a time, in primary-key order."""
    after: Any = None
    while True:
        statement = sa.select(table).order_by(table.c[key]).limit(CHUNK)
        if after is not None:
            statement = statement.where(table.c[key] > after)
        rows = connection.execute(statement).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1]._mapping[key]


def _seal_existing(connection: sa.Connection, keyring: Any) -> None:
    from schemas.money import format_money

    def seal(table: str, column: str, codec: str, row: str, value: Any) -> str | None:
        if value is None:
            return None
        if codec == "json":
            return str(keyring.seal_json(value, table=table, column=column, row=row))
        if codec == "money":
            value = format_money(Decimal(value))
        return str(keyring.seal_text(value, table=table, column=column, row=row))

    for name, (row_columns, key, fields) in SEALED.items():
        names = dict.fromkeys((key, *row_columns))
        table = sa.table(
            name,
            *(sa.column(column) for column in names),
            *(sa.column(column, _TYPES[codec]()) for column, codec, _ in fields),
            *(sa.column(f"{column}_sealed", sa.Text()) for column, _, _ in fields),
        )
        statement = (
            sa.update(table)
            .where(table.c[key] == sa.bindparam("row_key"))
            .values({f"{c}_sealed": sa.bindparam(f"sealed_{c}") for c, _, _ in fields})
        )
        for rows in _chunks(connection, table, key):
            values = []
            for row in rows:
                mapping = row._mapping
                identity = "/".join(str(mapping[column]) for column in row_columns)
                values.append(
                    {
                        "row_key": mapping[key],
                        **{
                            f"sealed_{column}": seal(name, column, codec, identity, mapping[column])
                            for column, codec, _ in fields
                        },
                    }
                )
            connection.execute(statement, values)


def upgrade() -> None:
    for table, (_, _, fields) in SEALED.items():
        for column, _, _ in fields:
            op.add_column(table, sa.Column(f"{column}_sealed", sa.Text(), nullable=True))

    connection = op.get_bind()
    if _rows_exist(connection):
        _seal_existing(connection, _keyring(connection))

    postgresql = connection.dialect.name == "postgresql"
    for table, (_, _, fields) in SEALED.items():
        for column, _, required in fields:
            op.drop_column(table, column)
            if required and postgresql:
                op.alter_column(table, f"{column}_sealed", nullable=False)


def downgrade() -> None:
    raise NotImplementedError(
        "sealed values cannot be put back in the clear by a migration; restore a backup"
    )
