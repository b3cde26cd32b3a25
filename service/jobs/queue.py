"""The one small interface between intake and whatever runs verifications.

Intake stores a verification and, in the same transaction, its job (`enqueue`); after the
commit it says so (`committed`). A job is a verification id and nothing else. Two
implementations: `service.jobs.lease.LeaseQueue` (in-process, over the verification rows
themselves: SQLite, and PostgreSQL without workers) and `service.jobs.pgqueue.PgQueue`
(PostgreSQL, pgqueuer: `hedui worker` processes).
"""

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from service.models import Verification


class RunQueue(Protocol):
    def claim_at_insert(self) -> Mapping[str, Any]:
        """The columns that store a new verification claimed already, when this process
        runs it at once: its insert is its claim, and `enqueue` is not called for it. Empty
        when it is not run here: then `enqueue` follows its insert."""

    async def enqueue(self, session: AsyncSession, verification: Verification) -> None:
        """Add the verification's job within the caller's transaction (which has just
        inserted it): stored together, or not at all."""

    def committed(self, verification: Verification) -> None:
        """The transaction that enqueued this verification has committed."""

    async def enqueue_many(self, session: AsyncSession, verifications: list[Verification]) -> None:
        """Jobs for many verifications (a batch's chunk) within the caller's transaction.
        They wait their turn: none is claimed here, so a large batch never starts at once."""

    def committed_many(self, count: int) -> None:
        """The transaction that enqueued `count` verifications with `enqueue_many` has
        committed: start taking them up (a backlog, run at this process's concurrency)."""

    def stop(self, verification_id: str) -> None:
        """Cancel this process's run of the verification, if it runs one (it was
        withdrawn: its partner calls in flight are abandoned)."""

    def in_flight(self) -> int:
        """Runs going on in this process now."""

    async def start(self) -> None:
        """Begin running jobs in this process (when it runs any)."""

    async def close(self) -> None:
        """Stop running jobs; unfinished runs are left for another process to resume."""
