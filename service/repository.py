"""What every repository is: the queries of one domain noun, over the caller's session.

A repository runs statements and never commits: the unit of work that opened the session
(a request, a job) does (see `service.db.session_scope`)."""

from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    """The base of every `<Noun>Repository`: built with `from_session(session)`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)
