"""`hedui recheck --due` over a long roll: memory bounded by a chunk, not by the roll.

The recipients here all need a new authorization, so the passes go through every one of
them (reading, deciding and writing each re-check row) without asking a partner: what is
measured is what the scheduler and the drive keep, not the runs. Every recipient stays
due, so the walk can be repeated: the first one warms the statement caches, the second
is measured.
"""

import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from service.models import ApiKey, Recheck, Recipient, Verification
from service.recheck.drive import run_until_done
from service.runtime import build_runtime
from tests.conftest import service_settings

APPROVED = date(2025, 12, 1)
DUE = date(2026, 12, 1)
ROLL = 2_000


def _verification(index: int, now: datetime) -> dict[str, object]:
    return {
        "id": f"00000000-0000-4000-8000-{index:012d}",
        "reference": f"roll-{index}",
        "program": "dibao",
        "region_code": "530102",
        "area": "urban",
        "as_of": APPROVED,
        "consent_document_id": "AUTH-0001",
        "consent_signed_on": APPROVED,
        "status": "completed",
        "recommendation": "eligible",
        "created_by": "roll",
        "created_at": now,
        "completed_at": now,
    }


def _recipient(index: int, now: datetime) -> dict[str, object]:
    return {
        "id": f"10000000-0000-4000-8000-{index:012d}",
        "reference": f"roll-{index}",
        "program": "dibao",
        "area": "urban",
        "region_code": "530102",
        "recheck_class": "regular",
        "status": "active",
        "origin_verification_id": f"00000000-0000-4000-8000-{index:012d}",
        "approved_verification_id": f"00000000-0000-4000-8000-{index:012d}",
        "approved_on": APPROVED,
        "next_recheck_on": DUE,
        "consent_document_id": "AUTH-0001",
        "consent_signed_on": APPROVED,
        # Expired before the re-check is due: listed as needing new consent, not queried.
        "consent_expires_on": date(2026, 6, 1),
        "created_at": now,
        "updated_at": now,
    }


async def test_a_long_roll_is_gone_through_in_bounded_memory(
    own_database_url: str, tmp_path: Path
) -> None:
    """2,000 due recipients: every one is counted, and the walk at its peak holds under
    1.5 MB (0.6-0.7 MB here), as it does for 1,000 or 6,000; keeping an id and a plan item
    per recipient took 3.9 MB for 3,000, 2.6 MB for these."""
    settings = service_settings(
        own_database_url, tmp_path / "sandbox.db", sandbox="off", recheck_interval_s=0
    )
    async with build_runtime(settings, runs_here=False) as runtime:
        now = datetime.now(UTC)
        async with runtime.session_factory() as session:
            session.add(
                ApiKey(id="roll", name="roll", role="caseworker", region_prefix="", token_hash="-")
            )
            await session.flush()
            for start in range(0, ROLL, 500):
                indices = range(start, min(start + 500, ROLL))
                await session.execute(
                    insert(Verification.__table__), [_verification(i, now) for i in indices]
                )
                await session.execute(
                    insert(Recipient.__table__), [_recipient(i, now) for i in indices]
                )
            await session.commit()

        scheduler = runtime.rechecks
        first = await run_until_done(scheduler, DUE, poll_s=0)
        assert first.count("needs_consent") == ROLL
        assert first.count("queued") == 0

        settled = 0

        def progress(n: int) -> None:
            nonlocal settled
            settled += n

        tracemalloc.start()
        try:
            again = await run_until_done(scheduler, DUE, progress=progress, poll_s=0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert again.count("needs_consent") == settled == ROLL
        assert peak < 1_500_000, f"peak {peak} bytes for {ROLL} recipients"

        preview = await scheduler.preview(DUE)
        assert preview.needs_consent == ROLL
        assert len(preview.items) == 50

        async with runtime.session_factory() as session:
            rechecks = await session.scalar(select(func.count()).select_from(Recheck))
        assert rechecks == ROLL  # one per recipient and due date, however often run
