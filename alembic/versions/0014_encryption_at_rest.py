"""encryption at rest: data keys, sealed columns, blind indexes, keyed request hashes

Existing rows are sealed here, in the migration (it needs the key-encryption key: the
`HEDUI_KEK`, `HEDUI_KEY_FILE` or default key file that `hedui serve` would use); on a
database without rows nothing needs a key. The plaintext columns are dropped afterwards.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:30:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _keyring(connection: sa.Connection) -> Any:
    """The keyring to seal existing rows with: the first data key and the blind-index key
    are created here, wrapped by the deployment's KEK."""
    from datetime import UTC, datetime

    from service.config import Settings
    from service.crypto.kek import load_kek
    from service.crypto.keyring import DataKey, Keyring, new_key
    from service.crypto.store import DATA, INDEX, INDEX_KID, PRIMARY, wrap

    kek = op.get_context().config.attributes.get("kek")  # type: ignore[union-attr]
    if kek is None:
        settings = Settings()
        kek = load_kek(
            kek=settings.kek.get_secret_value() if settings.kek else None,
            key_file=settings.key_file,
            database_url=settings.database_url,
        )
    data, index = new_key(), new_key()
    now = datetime.now(UTC)
    keys = sa.table(
        "data_keys",
        sa.column("kid"),
        sa.column("purpose"),
        sa.column("state"),
        sa.column("wrapped"),
        sa.column("kek_id"),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    connection.execute(
        keys.insert(),
        [
            {
                "kid": "k1",
                "purpose": DATA,
                "state": PRIMARY,
                "wrapped": wrap(kek, "k1", DATA, data),
                "kek_id": kek.kek_id,
                "created_at": now,
            },
            {
                "kid": INDEX_KID,
                "purpose": INDEX,
                "state": "active",
                "wrapped": wrap(kek, INDEX_KID, INDEX, index),
                "kek_id": kek.kek_id,
                "created_at": now,
            },
        ],
    )
    return Keyring([DataKey("k1", data)], "k1", index)


def _rows_exist(connection: sa.Connection) -> bool:
    for table in (
        "verification_members",
        "source_results",
        "reports",
        "near_relatives",
        "idempotency_keys",
    ):
        if connection.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first():  # noqa: S608 - fixed names
            return True
    return False


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _seal_existing(connection: sa.Connection, keyring: Any) -> None:
    def seal(table: str, column: str, row: str, value: str) -> str:
        return str(keyring.seal_text(value, table=table, column=column, row=row))

    def seal_json(table: str, column: str, row: str, value: Any) -> str:
        return str(keyring.seal_json(_json(value), table=table, column=column, row=row))

    members = connection.execute(
        sa.text("SELECT id, verification_id, position, id_number, name FROM verification_members")
    ).all()
    for id_, verification_id, position, id_number, name in members:
        row = f"{verification_id}/{position}"
        connection.execute(
            sa.text(
                "UPDATE verification_members SET id_number_sealed = :i, id_number_blind = :b, "
                "name_sealed = :n WHERE id = :id"
            ),
            {
                "i": seal("verification_members", "id_number", row, id_number),
                "b": keyring.blind(id_number),
                "n": seal("verification_members", "name", row, name),
                "id": id_,
            },
        )
    sources = connection.execute(
        sa.text("SELECT id, verification_id, source, records FROM source_results")
    ).all()
    for id_, verification_id, source, records in sources:
        connection.execute(
            sa.text("UPDATE source_results SET records_sealed = :r WHERE id = :id"),
            {
                "r": seal_json("source_results", "records", f"{verification_id}/{source}", records),
                "id": id_,
            },
        )
    reports = connection.execute(
        sa.text("SELECT verification_id, body, near_relatives FROM reports")
    ).all()
    for verification_id, body, near_relatives in reports:
        connection.execute(
            sa.text(
                "UPDATE reports SET body_sealed = :b, near_relatives_sealed = :n "
                "WHERE verification_id = :v"
            ),
            {
                "b": seal_json("reports", "body", verification_id, body),
                "n": seal_json("reports", "near_relatives", verification_id, near_relatives),
                "v": verification_id,
            },
        )
    relatives = connection.execute(
        sa.text("SELECT id, staff_name, relative_id_number, relative_name FROM near_relatives")
    ).all()
    for id_, staff_name, relative_id_number, relative_name in relatives:
        connection.execute(
            sa.text(
                "UPDATE near_relatives SET staff_name_sealed = :s, "
                "relative_id_number_sealed = :i, relative_id_number_blind = :b, "
                "relative_name_sealed = :n WHERE id = :id"
            ),
            {
                "s": seal("near_relatives", "staff_name", id_, staff_name),
                "i": seal("near_relatives", "relative_id_number", id_, relative_id_number),
                "b": keyring.blind(relative_id_number),
                "n": seal("near_relatives", "relative_name", id_, relative_name),
                "id": id_,
            },
        )
    # Request fingerprints were bare SHA-256 of bodies holding ID numbers (guessable); they
    # become HMAC-SHA256 of that digest, which is what new requests store.
    keys = connection.execute(
        sa.text("SELECT api_key_id, key, request_hash FROM idempotency_keys")
    ).all()
    for api_key_id, key, digest in keys:
        connection.execute(
            sa.text(
                "UPDATE idempotency_keys SET request_hash = :h WHERE api_key_id = :a AND key = :k"
            ),
            {"h": keyring.keyed_hash("request", digest.encode()), "a": api_key_id, "k": key},
        )


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wrapped", sa.Text(), nullable=False),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_data_keys")),
    )
    op.create_table(
        "key_rotations",
        sa.Column("target_kid", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("rewritten", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("target_kid", name=op.f("pk_key_rotations")),
    )
    with op.batch_alter_table("verification_members") as batch_op:
        batch_op.add_column(sa.Column("id_number_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("id_number_blind", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("name_sealed", sa.Text(), nullable=True))
    with op.batch_alter_table("source_results") as batch_op:
        batch_op.add_column(sa.Column("records_sealed", sa.Text(), nullable=True))
    with op.batch_alter_table("reports") as batch_op:
        batch_op.add_column(sa.Column("body_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("near_relatives_sealed", sa.Text(), nullable=True))
    with op.batch_alter_table("near_relatives") as batch_op:
        batch_op.add_column(sa.Column("staff_name_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("relative_id_number_sealed", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("relative_id_number_blind", sa.String(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("relative_name_sealed", sa.Text(), nullable=True))

    connection = op.get_bind()
    if _rows_exist(connection):
        _seal_existing(connection, _keyring(connection))

    with op.batch_alter_table("verification_members") as batch_op:
        batch_op.drop_constraint("uq_verification_members_verification_id", type_="unique")
        batch_op.drop_column("id_number")
        batch_op.drop_column("name")
        batch_op.alter_column("id_number_sealed", nullable=False)
        batch_op.alter_column("id_number_blind", nullable=False)
        batch_op.alter_column("name_sealed", nullable=False)
        batch_op.create_unique_constraint(
            "uq_verification_members_verification_id", ["verification_id", "id_number_blind"]
        )
        batch_op.create_index("ix_verification_members_id_number_blind", ["id_number_blind"])
    with op.batch_alter_table("source_results") as batch_op:
        batch_op.drop_column("records")
        batch_op.alter_column("records_sealed", nullable=False)
    with op.batch_alter_table("reports") as batch_op:
        batch_op.drop_column("body")
        batch_op.drop_column("near_relatives")
        batch_op.alter_column("body_sealed", nullable=False)
        batch_op.alter_column("near_relatives_sealed", nullable=False)
    with op.batch_alter_table("near_relatives") as batch_op:
        batch_op.drop_index("ix_near_relatives_relative_id_number")
        batch_op.drop_column("staff_name")
        batch_op.drop_column("relative_id_number")
        batch_op.drop_column("relative_name")
        batch_op.alter_column("staff_name_sealed", nullable=False)
        batch_op.alter_column("relative_id_number_sealed", nullable=False)
        batch_op.alter_column("relative_id_number_blind", nullable=False)
        batch_op.alter_column("relative_name_sealed", nullable=False)
        batch_op.create_index(
            "ix_near_relatives_relative_id_number_blind", ["relative_id_number_blind"]
        )


def downgrade() -> None:
    raise NotImplementedError(
        "sealed values cannot be put back in the clear by a migration; restore a backup"
    )
