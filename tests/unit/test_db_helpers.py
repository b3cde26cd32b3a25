"""`retry_while_unavailable`: a transaction repeated whole while the database cannot serve
it, and only then; `commit_begun`: a commit only of what a session began."""

from pathlib import Path

import pytest
from sqlalchemy import event, exc, text

from service.db import commit_begun, create_engine, create_session_factory, retry_while_unavailable


def unavailable() -> exc.OperationalError:
    return exc.OperationalError("UPDATE ...", {}, ConnectionRefusedError("refused"))


class Flaky:
    """An operation that fails with `failures` in turn, then answers its attempt number."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.attempts = 0

    async def __call__(self) -> int:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.attempts


async def test_a_first_attempt_that_gets_through_is_the_only_one() -> None:
    operation = Flaky()
    assert await retry_while_unavailable(operation, what="store") == 1
    assert operation.attempts == 1


async def test_an_unavailable_database_is_waited_for_until_it_answers() -> None:
    operation = Flaky(unavailable(), unavailable(), unavailable())
    result = await retry_while_unavailable(operation, what="store", initial_s=0.001, max_s=0.002)
    assert result == 4
    assert operation.attempts == 4


async def test_any_other_error_is_raised_at_once_from_the_first_attempt() -> None:
    operation = Flaky(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        await retry_while_unavailable(operation, what="store", initial_s=0.001)
    assert operation.attempts == 1


async def test_any_other_error_after_an_outage_is_raised_as_it_came() -> None:
    operation = Flaky(unavailable(), exc.IntegrityError("INSERT ...", {}, ValueError("dup")))
    with pytest.raises(exc.IntegrityError):
        await retry_while_unavailable(operation, what="store", initial_s=0.001)
    assert operation.attempts == 2


async def test_commit_begun_commits_what_began_and_nothing_else(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'commit.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (a INTEGER)"))
        sessions = create_session_factory(engine)
        commits: list[object] = []
        async with sessions() as idle, sessions() as writer:
            for session in (idle, writer):
                event.listen(session.sync_session, "after_commit", commits.append)
            await writer.execute(text("INSERT INTO t VALUES (1)"))
            await commit_begun(idle)
            await commit_begun(writer)
        assert commits == [writer.sync_session]
        async with sessions() as reader:
            assert await reader.scalar(text("SELECT a FROM t")) == 1
    finally:
        await engine.dispose()
