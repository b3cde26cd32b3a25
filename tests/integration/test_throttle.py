"""Per-partner throttles: the agreed concurrency and rate hold in total over several
throttles sharing one PostgreSQL database (as several processes do); on SQLite, over the
one process's own."""

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import service.connector.throttle as throttle_module
from service.connector.metrics import Metrics
from service.connector.throttle import (
    Limits,
    LocalThrottle,
    Permit,
    SharedThrottle,
    Starved,
    Throttle,
)

Throttles = Callable[..., tuple[Throttle, Throttle]]


@pytest.fixture
async def throttles(engine: AsyncEngine) -> AsyncIterator[Throttles]:
    """Two throttles as two processes have them: shared on PostgreSQL (each with its own
    connections, closed after the test), one on SQLite."""
    opened: list[SharedThrottle] = []

    def make(metrics: Metrics | None = None) -> tuple[Throttle, Throttle]:
        if engine.dialect.name == "sqlite":
            local = LocalThrottle(metrics)
            return local, local
        pair = SharedThrottle(engine.url, metrics), SharedThrottle(engine.url, metrics)
        opened.extend(pair)
        return pair

    yield make
    for throttle in opened:
        await throttle.aclose()


def _partner() -> str:
    """A partner of this test alone (the session's database is shared by the tests)."""
    return f"p{uuid.uuid4().hex[:12]}"


async def test_concurrency_holds_in_total_over_two_processes(
    engine: AsyncEngine, throttles: Throttles
) -> None:
    """40 requests from two processes, concurrency 2: never more than 2 in flight, all served."""
    partner, limits = _partner(), Limits(concurrency=2)
    in_flight = peak = served = 0

    async def call(throttle: Throttle) -> None:
        nonlocal in_flight, peak, served
        loop = asyncio.get_running_loop()
        permit = await throttle.acquire(partner, limits, loop.time() + 30)
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        served += 1
        await throttle.release(permit)

    first, second = throttles()
    await asyncio.gather(*(call(first if n % 2 else second) for n in range(40)))

    assert (peak, served) == (2, 40)


async def test_rate_spaces_the_starts_of_requests_from_two_processes(
    engine: AsyncEngine, throttles: Throttles
) -> None:
    """12 requests at 20/s from two processes: their turns (by the database's clock) are
    at least 50 ms apart, and none was refused."""
    partner, limits = _partner(), Limits(concurrency=10, rate_per_s=20)
    turns: list[float] = []
    metrics = Metrics()

    async def call(throttle: Throttle) -> None:
        loop = asyncio.get_running_loop()
        permit = await throttle.acquire(partner, limits, loop.time() + 30)
        assert permit.turn_at is not None
        turns.append(permit.turn_at)
        await throttle.release(permit)

    first, second = throttles(metrics)
    await asyncio.gather(*(call(first if n % 2 else second) for n in range(12)))

    turns.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    assert len(turns) == 12
    assert min(gaps) >= 0.05 - 1e-6, gaps
    assert metrics.throttle_waits.labels(partner, "rate")._value.get() >= 10


async def test_a_turn_beyond_the_budget_is_refused_without_taking_a_slot(
    engine: AsyncEngine, throttles: Throttles
) -> None:
    """At 1/s the second request's turn is a second away: with 0.5 s of budget it is
    `Starved` at once, takes no slot and moves no turn; the next one with time is served."""
    partner, limits = _partner(), Limits(concurrency=1, rate_per_s=1)
    metrics = Metrics()
    first, second = throttles(metrics)
    loop = asyncio.get_running_loop()
    held = await first.acquire(partner, limits, loop.time() + 10)
    await first.release(held)

    with pytest.raises(Starved) as refused:
        await second.acquire(partner, limits, loop.time() + 0.5)
    started = loop.time()
    later = await second.acquire(partner, limits, loop.time() + 10)
    await second.release(later)

    assert refused.value.limit == "rate"
    # Its turn was not pushed back by the refused one (that would be a second more). A busy
    # machine may wake it past its turn's tolerance: it then takes the next turn, by the
    # throttle's own rule, and that second is allowed for, counted, not guessed.
    late = metrics.throttle_late_turns.labels(partner)._value.get()
    assert loop.time() - started < 1.5 + late * limits.spacing_s


async def test_no_free_slot_within_the_budget_is_starved(
    engine: AsyncEngine, throttles: Throttles
) -> None:
    partner, limits = _partner(), Limits(concurrency=1)
    first, second = throttles()
    loop = asyncio.get_running_loop()
    held = await first.acquire(partner, limits, loop.time() + 10)

    with pytest.raises(Starved) as refused:
        await second.acquire(partner, limits, loop.time() + 0.2)
    await first.release(held)
    after = await second.acquire(partner, limits, loop.time() + 1)
    await second.release(after)

    assert refused.value.limit == "concurrency"


async def test_a_dead_process_s_slot_comes_free_when_its_lease_ends(
    engine: AsyncEngine, throttles: Throttles
) -> None:
    """A process killed while holding a slot never gives it back: the slot is free again
    once the request's budget and the grace have passed."""
    if engine.dialect.name == "sqlite":
        pytest.skip("one process on SQLite: a dead process takes its throttle with it")
    import service.connector.throttle as throttle_module

    partner, limits = _partner(), Limits(concurrency=1)
    dead, alive = throttles()
    loop = asyncio.get_running_loop()
    grace = throttle_module.LEASE_GRACE_S
    throttle_module.LEASE_GRACE_S = 0.3
    try:
        await dead.acquire(partner, limits, loop.time() + 0.2)  # never released
        started = loop.time()
        permit = await alive.acquire(partner, limits, loop.time() + 5)
    finally:
        throttle_module.LEASE_GRACE_S = grace
    await alive.release(permit)

    assert 0.3 <= loop.time() - started < 3


async def test_a_closing_process_gives_back_the_slots_its_requests_still_held(
    engine: AsyncEngine, throttles: Throttles
) -> None:
    """A server that stops while a request holds a slot (cancelled before its give-back
    ran) frees the slot as it closes: the server started next finds it at once, rather
    than after the lease's budget and grace."""
    if engine.dialect.name == "sqlite":
        pytest.skip("one process on SQLite: the throttle lives and dies with it")
    partner, limits = _partner(), Limits(concurrency=1)
    closing, next_server = throttles()
    loop = asyncio.get_running_loop()
    await closing.acquire(partner, limits, loop.time() + 30)  # never released
    with pytest.raises(Starved):
        await next_server.acquire(partner, limits, loop.time() + 0.1)

    await closing.aclose()
    permit = await next_server.acquire(partner, limits, loop.time() + 0.1)
    await next_server.release(permit)

    assert permit.slot == 0


def _most_in_one_second(times: list[float]) -> int:
    """Most of `times` within any one second (a sliding window, as a partner counts)."""
    times, most, first = sorted(times), 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_turns_a_stalled_process_woke_late_for_are_taken_again_not_bunched(
    engine: AsyncEngine, throttles: Throttles
) -> None:
    """90 requests at 50/s from two processes, whose event loop stalls for 300 ms early on
    (a busy process): the ~15 requests whose turns passed meanwhile do not all go at once
    when it wakes, bunched with the turns after them; they take new turns. Every second of
    requests sent holds at most 50, and all 90 are served."""
    partner, limits = _partner(), Limits(concurrency=100, rate_per_s=50)
    metrics = Metrics()
    sent: list[float] = []

    async def call(throttle: Throttle) -> None:
        loop = asyncio.get_running_loop()
        permit = await throttle.acquire(partner, limits, loop.time() + 30)
        sent.append(time.perf_counter())
        await throttle.release(permit)

    async def stall() -> None:
        await asyncio.sleep(0.3)
        time.sleep(0.3)  # noqa: ASYNC251 - the point: the whole event loop stops

    first, second = throttles(metrics)
    await asyncio.gather(stall(), *(call(first if n % 2 else second) for n in range(90)))

    assert len(sent) == 90
    assert _most_in_one_second(sent) <= 50
    assert metrics.throttle_late_turns.labels(partner)._value.get() >= 5


@pytest.mark.postgres_only
class TestKeptSlots:
    """A process keeps a slot its request gave back for a moment, for its next request to
    the same partner, without a statement: only while the slot is still held in the
    database, only when other slots were free as it was taken, and never for long."""

    @pytest.fixture
    def shared(self, throttles: Throttles) -> SharedThrottle:
        throttle, _ = throttles()
        assert isinstance(throttle, SharedThrottle)
        return throttle

    @staticmethod
    async def holders(engine: AsyncEngine, partner: str) -> dict[int, str | None]:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT slot, holder FROM connector_throttle_slots WHERE connector = :c"),
                {"c": partner},
            )
            return {row.slot: row.holder for row in rows}

    @staticmethod
    async def all_given_back(engine: AsyncEngine, partner: str, *, within_s: float) -> None:
        """Wait up to `within_s` until no slot of `partner` is held (a slot taken for nobody
        goes back at once, long before its lease would free it: a budget of 10 s and the
        grace), then hold the test to it."""
        for _ in range(round(within_s / 0.02)):
            if set((await TestKeptSlots.holders(engine, partner)).values()) == {None}:
                return
            await asyncio.sleep(0.02)
        assert set((await TestKeptSlots.holders(engine, partner)).values()) == {None}

    @staticmethod
    def statements(monkeypatch: pytest.MonkeyPatch, throttle: SharedThrottle) -> list[str]:
        sent: list[str] = []
        fetch, fetch_all = throttle._fetch, throttle._fetch_all

        async def counting(statement: str, *arguments: object) -> Any:
            sent.append(statement)
            return await fetch(statement, *arguments)

        async def counting_all(statement: str, *arguments: object) -> Any:
            sent.append(statement)
            return await fetch_all(statement, *arguments)

        monkeypatch.setattr(throttle, "_fetch", counting)
        monkeypatch.setattr(throttle, "_fetch_all", counting_all)
        return sent

    async def test_the_next_request_takes_the_kept_slot_without_a_statement(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=4)
        loop = asyncio.get_running_loop()
        first = await shared.acquire(partner, limits, loop.time() + 10)
        await shared.release(first)
        assert first.slot is not None
        assert (await self.holders(engine, partner))[first.slot] == shared.holder  # kept

        sent = self.statements(monkeypatch, shared)
        second = await shared.acquire(partner, limits, loop.time() + 10)
        await shared.release(second)

        assert (second.slot, sent) == (first.slot, [])
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # unused: back in the database
        assert set((await self.holders(engine, partner)).values()) == {None}

    async def test_with_a_rate_the_kept_slot_still_takes_its_turn(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=4, rate_per_s=20)
        loop = asyncio.get_running_loop()
        first = await shared.acquire(partner, limits, loop.time() + 10)
        await shared.release(first)
        sent = self.statements(monkeypatch, shared)
        second = await shared.acquire(partner, limits, loop.time() + 10)
        await shared.release(second)

        assert second.slot == first.slot
        assert first.turn_at is not None
        assert second.turn_at is not None
        assert second.turn_at - first.turn_at >= limits.spacing_s - 1e-6
        assert len(sent) == 1  # the turn alone

    async def test_a_slot_that_was_the_last_free_one_goes_back_at_once(
        self, engine: AsyncEngine, shared: SharedThrottle
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=1)
        loop = asyncio.get_running_loop()
        permit = await shared.acquire(partner, limits, loop.time() + 10)
        await shared.release(permit)
        assert (await self.holders(engine, partner)) == {0: None}

    @staticmethod
    async def taken_and_awaited(
        shared: SharedThrottle,
    ) -> tuple[str, Limits, Permit, asyncio.Task[Permit]]:
        """A partner with one slot, taken by a request that holds it, and a second request
        of the same process waiting for it."""
        partner, limits = _partner(), Limits(concurrency=1)
        loop = asyncio.get_running_loop()
        first = await shared.acquire(partner, limits, loop.time() + 10)
        waiting = asyncio.create_task(shared.acquire(partner, limits, loop.time() + 10))
        return partner, limits, first, waiting

    async def test_the_last_free_slot_goes_to_a_request_of_this_process_waiting_for_it(
        self, engine: AsyncEngine, throttles: Throttles, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        shared, other = throttles()
        assert isinstance(shared, SharedThrottle)
        partner, limits, first, waiting = await self.taken_and_awaited(shared)
        loop = asyncio.get_running_loop()
        elsewhere = asyncio.create_task(other.acquire(partner, limits, loop.time() + 10))
        await asyncio.sleep(0.05)  # both have asked the database and found no slot
        sent = self.statements(monkeypatch, shared)
        await shared.release(first)
        second = await waiting

        assert (second.slot, sent) == (first.slot, [])  # handed over, no statement
        assert not elsewhere.done()  # the slot never went back to the database
        await shared.release(second)  # nobody of this process waits: back at once
        third = await elsewhere
        assert third.slot == first.slot
        await other.release(third)
        assert (await self.holders(engine, partner)) == {0: None}

    async def test_a_process_holding_every_slot_waits_for_one_without_asking_the_database(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=2)
        loop = asyncio.get_running_loop()
        held = [await shared.acquire(partner, limits, loop.time() + 10) for _ in range(2)]
        sent = self.statements(monkeypatch, shared)
        waiting = asyncio.create_task(shared.acquire(partner, limits, loop.time() + 10))
        await asyncio.sleep(0.1)  # five polls' worth: none can be free in the database
        assert not waiting.done()
        assert sent == []
        await shared.release(held[0])
        got = await waiting
        assert got.slot == held[0].slot
        assert sent == []
        for permit in (got, held[1]):
            await shared.release(permit)

    async def test_requests_arriving_together_ask_only_for_the_slots_there_are(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=2)
        loop = asyncio.get_running_loop()
        await shared.release(await shared.acquire(partner, limits, loop.time() + 10))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # back in the database
        sent = self.statements(monkeypatch, shared)

        async def one() -> int | None:
            permit = await shared.acquire(partner, limits, loop.time() + 10)
            await asyncio.sleep(0.01)
            await shared.release(permit)
            return permit.slot

        slots = await asyncio.gather(*(one() for _ in range(6)))
        # Two takes on their way cover both slots, in one statement: the other four wait
        # for them here instead of asking the database for a slot it cannot have.
        assert len(sent) == 1
        assert set(slots) == {0, 1}

    async def test_that_no_slot_was_free_stands_for_the_polling_interval(
        self, throttles: Throttles, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        shared, other = throttles()
        assert isinstance(shared, SharedThrottle)
        partner, limits = _partner(), Limits(concurrency=1)
        loop = asyncio.get_running_loop()
        held = await other.acquire(partner, limits, loop.time() + 10)
        sent = self.statements(monkeypatch, shared)
        looked, counted = asyncio.Event(), shared._fetch_all

        async def noting(statement: str, *arguments: object) -> Any:
            looked.set()
            return await counted(statement, *arguments)

        monkeypatch.setattr(shared, "_fetch_all", noting)
        waiting = asyncio.create_task(shared.acquire(partner, limits, loop.time() + 10))
        # Its first look (however long a loaded machine takes to make it) finds the slot
        # held elsewhere; waiting in line it does not ask again at once, only when the
        # interval is over.
        await asyncio.wait_for(looked.wait(), 5)
        assert len(sent) == 1
        await asyncio.sleep(throttle_module.POLL_S / 2)
        assert len(sent) == 1
        await other.release(held)
        permit = await asyncio.wait_for(waiting, 2)
        assert permit.slot == held.slot
        await shared.release(permit)

    async def test_a_slot_goes_to_a_waiting_request_only_soon_after_it_was_taken(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(throttle_module, "KEEP_FOR_S", 0.1)
        _, _, first, waiting = await self.taken_and_awaited(shared)
        await asyncio.sleep(0.15)  # past the keep: the next process in line may have it
        sent = self.statements(monkeypatch, shared)
        await shared.release(first)
        second = await waiting
        await shared.release(second)
        assert second.slot == first.slot
        assert sent  # it went back to the database and was taken from there

    async def test_a_slot_is_not_kept_long_after_it_was_taken(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(throttle_module, "KEEP_FOR_S", 0.1)
        partner, limits = _partner(), Limits(concurrency=4)
        loop = asyncio.get_running_loop()
        permit = await shared.acquire(partner, limits, loop.time() + 10)
        await asyncio.sleep(0.15)  # a request longer than the slot may be kept
        await shared.release(permit)
        assert set((await self.holders(engine, partner)).values()) == {None}

    async def test_a_kept_slot_serves_only_a_request_its_lease_outlasts(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=4)
        loop = asyncio.get_running_loop()
        first = await shared.acquire(partner, limits, loop.time() + 1)
        await shared.release(first)
        sent = self.statements(monkeypatch, shared)
        # Its lease: about 1 s of budget and the grace; this budget ends later than that.
        later = loop.time() + 1 + throttle_module.LEASE_GRACE_S
        second = await shared.acquire(partner, limits, later)
        await shared.release(second)
        assert second.slot != first.slot
        assert len(sent) == 1

    async def test_closing_gives_the_kept_slots_back(
        self, engine: AsyncEngine, shared: SharedThrottle
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=4)
        loop = asyncio.get_running_loop()
        permits = [await shared.acquire(partner, limits, loop.time() + 10) for _ in range(2)]
        for permit in permits:
            await shared.release(permit)
        await shared.aclose()
        assert set((await self.holders(engine, partner)).values()) == {None}


@pytest.mark.postgres_only
class TestStatementsTogether:
    """A process's takes of partners without a rate asked for in one turn of its event
    loop go to the database in one statement, and its give-backs in one each turn (or
    while the one before is on its way)."""

    @pytest.fixture
    def shared(self, throttles: Throttles) -> SharedThrottle:
        throttle, _ = throttles()
        assert isinstance(throttle, SharedThrottle)
        return throttle

    async def test_takes_of_several_partners_arriving_together_are_one_statement(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first, second, limits = _partner(), _partner(), Limits(concurrency=4)
        deadline = asyncio.get_running_loop().time() + 10
        # Each partner's slots exist: the first take of a partner makes them, one by one.
        for partner in (first, second):
            await shared.release(await shared.acquire(partner, limits, deadline))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # back in the database
        sent = TestKeptSlots.statements(monkeypatch, shared)

        permits = await asyncio.gather(
            shared.acquire(first, limits, deadline),
            shared.acquire(second, limits, deadline),
            shared.acquire(first, limits, deadline),
        )

        assert len(sent) == 1
        assert [permit.connector for permit in permits] == [first, second, first]
        assert permits[0].slot != permits[2].slot
        for partner in (first, second):
            held = await TestKeptSlots.holders(engine, partner)
            mine = {p.slot for p in permits if p.connector == partner}
            assert {slot for slot, holder in held.items() if holder == shared.holder} == mine
        for permit in permits:
            await shared.release(permit)

    async def test_slots_given_back_together_are_one_statement(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=3)
        deadline = asyncio.get_running_loop().time() + 10
        await shared.release(await shared.acquire(partner, limits, deadline))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # back in the database
        # Every slot taken together (none was left free): none is kept, each goes back.
        permits = await asyncio.gather(*(shared.acquire(partner, limits, deadline) for _ in "abc"))
        given: list[tuple[object, ...]] = []
        execute = shared._execute

        async def counting(statement: str, *arguments: object) -> None:
            given.append(arguments)
            await execute(statement, *arguments)

        monkeypatch.setattr(shared, "_execute", counting)
        await asyncio.gather(*(shared.release(permit) for permit in permits))

        assert len(given) == 1
        assert sorted(given[0][1]) == sorted(permit.slot for permit in permits)  # type: ignore[call-overload]
        assert set((await TestKeptSlots.holders(engine, partner)).values()) == {None}

    async def test_a_take_cancelled_on_its_way_gives_its_slot_back(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=4)
        deadline = asyncio.get_running_loop().time() + 10
        await shared.release(await shared.acquire(partner, limits, deadline))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # back in the database
        on_its_way, go_on, answered = asyncio.Event(), asyncio.Event(), asyncio.Event()
        fetch_all = shared._fetch_all

        async def held_up(statement: str, *arguments: object) -> Any:
            on_its_way.set()
            await go_on.wait()
            rows = await fetch_all(statement, *arguments)
            answered.set()
            return rows

        monkeypatch.setattr(shared, "_fetch_all", held_up)
        request = asyncio.create_task(shared.acquire(partner, limits, deadline))
        await asyncio.wait_for(on_its_way.wait(), 5)
        request.cancel()
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await request
        # The request ends at once; the statement it sent goes on and takes the slot. Looked
        # for before it landed, every slot is free and no lease made yet (a CI run did).
        await asyncio.wait_for(answered.wait(), 5)

        # Its slot, taken for nobody: 2 s was once too short in a CI run sharing its cores.
        await TestKeptSlots.all_given_back(engine, partner, within_s=5)
        assert not shared._leases

    async def test_the_first_takes_of_a_partner_make_its_rows_once(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=8)
        deadline = asyncio.get_running_loop().time() + 10
        made: list[str] = []
        ensure = shared._ensure

        async def counting(connector: str, limits: Limits) -> None:
            made.append(connector)
            await ensure(connector, limits)

        monkeypatch.setattr(shared, "_ensure", counting)
        permits = await asyncio.gather(
            *(shared.acquire(partner, limits, deadline) for _ in "abcde")
        )

        assert made == [partner]
        assert len({permit.slot for permit in permits}) == 5
        for permit in permits:
            await shared.release(permit)

    async def test_give_backs_left_when_their_statement_is_cancelled_do_not_hang(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partner, limits = _partner(), Limits(concurrency=2)
        deadline = asyncio.get_running_loop().time() + 10
        await shared.release(await shared.acquire(partner, limits, deadline))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # back in the database
        first, second = await asyncio.gather(
            shared.acquire(partner, limits, deadline), shared.acquire(partner, limits, deadline)
        )
        on_its_way = asyncio.Event()

        async def never_answered(statement: str, *arguments: object) -> None:
            on_its_way.set()
            await asyncio.Event().wait()

        monkeypatch.setattr(shared, "_execute", never_answered)
        releasing = asyncio.create_task(shared.release(first))
        await asyncio.wait_for(on_its_way.wait(), 5)
        waiting = asyncio.create_task(shared.release(second))  # behind the one on its way
        await asyncio.sleep(0.01)
        for statement in list(shared._statements):
            statement.cancel()  # as the process closing does

        await asyncio.wait_for(asyncio.gather(releasing, waiting), 2)

    async def test_a_take_cancelled_as_its_answer_arrives_gives_its_slot_back(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The request's budget ends in the very turn of the loop in which the statement
        answers it (its timeout's callback runs before it does)."""
        partner, limits = _partner(), Limits(concurrency=2)
        loop = asyncio.get_running_loop()
        await shared.release(await shared.acquire(partner, limits, loop.time() + 10))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # back in the database
        fetch_all = shared._fetch_all
        victim: list[asyncio.Task[Permit]] = []

        async def answered(statement: str, *arguments: object) -> Any:
            rows = await fetch_all(statement, *arguments)
            loop.call_soon(victim[0].cancel)
            return rows

        monkeypatch.setattr(shared, "_fetch_all", answered)
        victim.append(asyncio.create_task(shared.acquire(partner, limits, loop.time() + 10)))
        with pytest.raises(asyncio.CancelledError):
            await victim[0]

        # As the cancelled take's test above waits (2 s was once too short there, on a CI
        # run sharing its cores): well short of the 10 s its lease would free it after.
        await TestKeptSlots.all_given_back(engine, partner, within_s=5)
        assert not shared._leases

    async def test_a_cancelled_give_back_does_not_cancel_the_others_in_its_group(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Closing is cut short while its kept slot waits in one group with a slot a
        request gives back: that request was not cancelled, and its release ends."""
        partner, limits = _partner(), Limits(concurrency=4)
        loop = asyncio.get_running_loop()
        first, second, third = [
            await shared.acquire(partner, limits, loop.time() + 10) for _ in "abc"
        ]
        await shared.release(first)  # kept
        for permit in (second, third):  # these go back as they are released
            key = (partner, permit.slot)
            assert permit.slot is not None
            shared._leases[key] = shared._leases[key]._replace(idle=False)
        execute, go_on = shared._execute, asyncio.Event()

        async def held_up(statement: str, *arguments: object) -> None:
            await go_on.wait()
            await execute(statement, *arguments)

        monkeypatch.setattr(shared, "_execute", held_up)
        on_its_way = asyncio.create_task(shared.release(third))  # a group on its way
        await asyncio.sleep(0.01)
        closing = asyncio.create_task(shared.aclose())  # the kept slot: the next group
        releasing = asyncio.create_task(shared.release(second))  # the same group
        await asyncio.sleep(0.01)
        closing.cancel()
        go_on.set()

        await asyncio.wait_for(asyncio.gather(on_its_way, releasing), 5)

    async def test_closing_as_a_batched_take_is_about_to_go_leaves_nothing_held(
        self, engine: AsyncEngine, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A request asks for a slot and is cancelled (the server stopping) in the turn in
        which the throttle closes: nothing of this process stays held, no pool open."""
        partner, limits = _partner(), Limits(concurrency=2)
        loop = asyncio.get_running_loop()
        await shared.release(await shared.acquire(partner, limits, loop.time() + 10))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)  # back in the database
        fetch_all = shared._fetch_all

        async def slow(statement: str, *arguments: object) -> Any:
            await asyncio.sleep(0.1)  # a loaded database: the take lands after the close
            return await fetch_all(statement, *arguments)

        monkeypatch.setattr(shared, "_fetch_all", slow)
        request = asyncio.create_task(shared.acquire(partner, limits, loop.time() + 10))
        await asyncio.sleep(0)  # it waits for its take, about to go
        request.cancel()
        await shared.aclose()
        await asyncio.sleep(0.3)

        assert set((await TestKeptSlots.holders(engine, partner)).values()) == {None}
        assert shared._pool is None

    async def test_a_take_together_while_the_database_is_away_tries_again(
        self, shared: SharedThrottle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        partners, limits = [_partner(), _partner()], Limits(concurrency=2)
        loop = asyncio.get_running_loop()
        for partner in partners:
            await shared.release(await shared.acquire(partner, limits, loop.time() + 10))
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)
        fetch_all, failures = shared._fetch_all, [0]

        async def flaky(statement: str, *arguments: object) -> Any:
            if failures[0] < 2:
                failures[0] += 1
                raise ConnectionResetError("gone")
            return await fetch_all(statement, *arguments)

        monkeypatch.setattr(shared, "_fetch_all", flaky)

        async def one(partner: str) -> Permit:
            permit = await shared.acquire(partner, limits, loop.time() + 5)
            await asyncio.sleep(0.01)
            await shared.release(permit)
            return permit

        permits = await asyncio.gather(*(one(partner) for partner in partners * 3))

        assert failures == [2]
        assert {permit.connector for permit in permits} == set(partners)
        await asyncio.sleep(throttle_module.KEEP_S + 0.2)
        assert not shared._leases

    async def test_requests_cut_short_at_random_leave_nothing_held(
        self, engine: AsyncEngine, throttles: Throttles
    ) -> None:
        """Two processes, four partners, 1,500 requests whose budgets run out at random
        moments (before, during and after their takes and give-backs): never more in
        flight than agreed, and nothing held once they are over."""
        first, second = throttles()
        assert isinstance(first, SharedThrottle)
        assert isinstance(second, SharedThrottle)
        partners = [_partner() for _ in range(4)]
        limits = {partner: Limits(c) for partner, c in zip(partners, (1, 2, 3, 5), strict=True)}
        in_flight = dict.fromkeys(partners, 0)
        peak = dict.fromkeys(partners, 0)
        chance = random.Random(7)  # noqa: S311 - timings for a test, not secrets
        loop = asyncio.get_running_loop()

        async def call(throttle: SharedThrottle, partner: str) -> None:
            permit = await throttle.acquire(partner, limits[partner], loop.time() + 5)
            in_flight[partner] += 1
            peak[partner] = max(peak[partner], in_flight[partner])
            try:
                await asyncio.sleep(chance.random() * 0.01)
            finally:
                in_flight[partner] -= 1
                await throttle.release(permit)

        async def one(n: int) -> None:
            with contextlib.suppress(TimeoutError, Starved):
                async with asyncio.timeout(chance.random() * 0.05):
                    await call(first if n % 2 else second, chance.choice(partners))

        for _ in range(5):
            await asyncio.gather(*(one(n) for n in range(300)))
        await asyncio.sleep(throttle_module.KEEP_S + 0.3)

        assert all(peak[partner] <= limits[partner].concurrency for partner in partners)
        for partner in partners:
            held = await TestKeptSlots.holders(engine, partner)
            assert set(held.values()) == {None}, (partner, held)
        for throttle in (first, second):
            assert not throttle._leases
            assert (throttle._to_give_back, throttle._giving, throttle._given_back) == (
                [],
                False,
                None,
            )
