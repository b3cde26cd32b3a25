"""`hedui recheck --due`: passes of the scheduler until every due re-check has ended.

Memory stays flat however long the roll: passes go through the due recipients once, by
id, each from where the last stopped; what they did is kept as counts; only the
verifications still running (at most the scheduler's `max_in_flight`) are held, and the
warnings are counted in the database at the end, by the day's re-check batches.
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from service.audit.service import Actor
from service.models.base import utcnow
from service.recheck.scheduler import RecheckScheduler
from service.verification.repository import VerificationRepository
from service.warning.repository import WarningRepository

FAILED_RUN = "failed_run"
"""A re-check started by the run whose verification then failed."""
WITHDRAWN_RUN = "withdrawn_run"
"""A re-check started by the run whose verification was then withdrawn."""


@dataclass
class Tally:
    """Recipients by what happened to their re-check, and the warnings raised."""

    outcomes: Counter[str] = field(default_factory=Counter)
    batches: set[str] = field(default_factory=set)
    """The re-check batches (one per region and day while open) the re-checks joined."""
    warnings: int = 0

    def count(self, outcome: str) -> int:
        return self.outcomes[outcome]


async def run_until_done(
    scheduler: RecheckScheduler,
    today: date,
    *,
    region_prefix: str = "",
    progress: Callable[[int], None] = lambda _: None,
    poll_s: float = 0.2,
    actor: Actor | None = None,
) -> Tally:
    """Start due re-checks (as many at once as the scheduler allows) and wait for each to
    end; `progress(n)` is told of every n recipients settled (ended, or not queried)."""
    tally = Tally()
    pending: set[str] = set()
    """Verifications started by this run and not ended yet: at most `max_in_flight`."""
    session_factory = scheduler.session_factory
    began = utcnow()
    after: str | None = None
    exhausted = False
    while True:
        if not exhausted:
            done = await scheduler.run_due(
                today, region_prefix=region_prefix, after=after, actor=actor
            )
            after, exhausted = done.after, done.exhausted
            tally.batches.update(done.batches)
            tally.outcomes.update(done.outcomes)
            progress(sum(done.outcomes.values()) - len(done.started))
            pending.update(verification.id for verification in done.started)
            if not done.started and not pending and not exhausted:
                break  # no room: others' re-checks fill it; the periodic pass goes on
        if exhausted and not pending:
            break
        await asyncio.sleep(poll_s)
        if pending:
            async with session_factory() as session:
                repository = VerificationRepository.from_session(session)
                ended = await repository.finished_ids(list(pending))
                # Started, then failed or withdrawn: counted apart, as a pass will start
                # them again (a withdrawn one once a new authorization is recorded).
                unfinished = await repository.count_unfinished_runs(ended)
            if unfinished.get("failed"):
                tally.outcomes[FAILED_RUN] += unfinished["failed"]
            if unfinished.get("withdrawn"):
                tally.outcomes[WITHDRAWN_RUN] += unfinished["withdrawn"]
            pending.difference_update(ended)
            if ended:
                progress(len(ended))
    async with session_factory() as session:
        tally.warnings = await WarningRepository.from_session(session).count_in_batches(
            sorted(tally.batches), since=began
        )
    return tally
