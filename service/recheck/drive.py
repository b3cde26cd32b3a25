"""`hedui recheck --due`: passes of the scheduler until every due re-check has ended."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from service.recheck.scheduler import RecheckScheduler
from service.verification.repository import VerificationRepository
from service.warning.repository import WarningRepository


@dataclass
class Tally:
    """Recipients by what happened to their re-check, and the warnings raised."""

    outcomes: dict[str, set[str]] = field(default_factory=dict)
    verifications: list[str] = field(default_factory=list)
    batches: set[str] = field(default_factory=set)
    """The re-check batches (one per region and day) the re-checks joined."""
    warnings: int = 0

    def note(self, outcome: str, recipient_id: str) -> bool:
        """Record an outcome; whether it is new for this recipient."""
        seen = self.outcomes.setdefault(outcome, set())
        if recipient_id in seen:
            return False
        seen.add(recipient_id)
        return True

    def count(self, outcome: str) -> int:
        return len(self.outcomes.get(outcome, ()))


async def run_until_done(
    scheduler: RecheckScheduler,
    today: date,
    *,
    region_prefix: str = "",
    progress: Callable[[int], None] = lambda _: None,
    poll_s: float = 0.2,
) -> Tally:
    """Start due re-checks (as many at once as the scheduler allows) and wait for each to
    end; `progress(n)` is told of every n recipients settled (ended, or not queried)."""
    tally = Tally()
    pending: set[str] = set()
    session_factory = scheduler.session_factory
    while True:
        done = await scheduler.run_due(today, region_prefix=region_prefix)
        tally.batches.update(done.batches)
        for item in done.items:
            if item.outcome != "queued" and tally.note(item.outcome, item.recipient_id):
                progress(1)
        for verification in done.started:
            tally.note("queued", verification.id)
            tally.verifications.append(verification.id)
            pending.add(verification.id)
        if not done.started and not pending:
            break
        await asyncio.sleep(poll_s)
        if pending:
            async with session_factory() as session:
                ended = await VerificationRepository.from_session(session).finished_ids(
                    list(pending)
                )
            pending.difference_update(ended)
            if ended:
                progress(len(ended))
    async with session_factory() as session:
        tally.warnings = await WarningRepository.from_session(session).count_for(
            tally.verifications
        )
    return tally
