"""Where a database's schema stands: the check every command makes before it touches rows."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from service.db import (
    SCHEMA_HEAD,
    SchemaNotCurrent,
    alembic_config,
    create_engine,
    require_current_schema,
    schema_state,
)


def test_the_head_in_code_is_alembics_head() -> None:
    """A new migration moves `SCHEMA_HEAD` with it: commands compare the database with it."""
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [SCHEMA_HEAD]


async def test_a_migrated_database_is_current(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        state = await schema_state(engine)
        await require_current_schema(engine)
    finally:
        await engine.dispose()
    assert state.current
    assert state.revisions == {SCHEMA_HEAD}
    assert state.problem() is None


async def _at(path: Path, *revisions: str) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            )
            for revision in revisions:
                await connection.execute(
                    text("INSERT INTO alembic_version VALUES (:revision)"), {"revision": revision}
                )
    finally:
        await engine.dispose()
    return url


@pytest.mark.parametrize(
    ("revisions", "said"),
    [
        ((), "has no hedui schema yet: run `hedui db upgrade`"),
        (("0001",), "is at schema revision 0001, behind this hedui's"),
        (("9999",), "is at schema revision 9999, newer than this hedui knows"),
        ((SCHEMA_HEAD, "0001"), "behind this hedui's"),
    ],
)
async def test_a_database_elsewhere_is_refused_saying_what_to_do(
    tmp_path: Path, revisions: tuple[str, ...], said: str
) -> None:
    engine = create_engine(await _at(tmp_path / "hedui.db", *revisions))
    try:
        state = await schema_state(engine)
        with pytest.raises(SchemaNotCurrent) as refused:
            await require_current_schema(engine)
    finally:
        await engine.dispose()
    assert not state.current
    assert said in str(refused.value)
    assert state.heads == {SCHEMA_HEAD}
