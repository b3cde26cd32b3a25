"""A run that ends its verification just as its heartbeat renews the lease keeps its result.

The run's last commit clears the lease; a renewal at that moment finds none and raises
`LeaseLost`. The run has committed and returns within milliseconds: it must not be
cancelled for a lease it gave up itself (its `run_finished` line and its count were lost).
"""

import asyncio

from service.jobs.workflow import LeaseLost, _until_either_ends


async def _lost() -> None:
    raise LeaseLost("v-1")


async def _returns_after(delay_s: float) -> str:
    await asyncio.sleep(delay_s)
    return "completed"


async def test_a_run_returning_just_after_its_lease_went_keeps_its_result() -> None:
    verify = asyncio.create_task(_returns_after(0.02))
    heartbeat = asyncio.create_task(_lost())
    await _until_either_ends(verify, heartbeat)
    assert verify.done()
    assert verify.result() == "completed"


async def test_a_run_taken_over_is_not_waited_for_long() -> None:
    """Another process has the run now: this one is left running only a moment."""
    verify = asyncio.create_task(_returns_after(30))
    heartbeat = asyncio.create_task(_lost())
    await asyncio.wait_for(_until_either_ends(verify, heartbeat), timeout=5)
    assert not verify.done()
    verify.cancel()


async def test_a_run_that_ends_first_is_not_held_by_its_heartbeat() -> None:
    verify = asyncio.create_task(_returns_after(0))
    heartbeat = asyncio.create_task(_returns_after(30))
    await asyncio.wait_for(_until_either_ends(verify, heartbeat), timeout=5)
    assert verify.result() == "completed"
    assert not heartbeat.done()
    heartbeat.cancel()
