"""Per-partner throttles: each partner's agreed concurrency and rate, held in total.

A partner agrees to so many requests in flight at once (`max_concurrency`) and so many a
second (`rate_per_s`); hedui must never exceed either, however many API processes and
workers run. Every HTTP request to a partner (attempts, retries, polls) first takes its
turn here, and holds a concurrency slot until its answer has been read; a request whose
turn would come too late for its budget is given up (`Starved`), and its source is then
`timeout`, never charged to the partner's health.

Two implementations behind one interface:

- `SharedThrottle` (PostgreSQL): the limits live in the database, as one row per slot of
  the agreed concurrency and one row per partner holding when its next request may start.
  Taking a turn is a single atomic statement (a free slot is taken with `FOR UPDATE SKIP
  LOCKED`, and the rate's schedule is advanced by one spacing in the same statement); giving a
  slot back is another. A slot carries `held_until` (the request's budget plus a grace), so
  the slots of a process killed mid-request come free by themselves.
  Rejected alternative: a share of each limit per live process (limit/N, agreed through a
  heartbeat table) costs nothing per call, but wastes the share of an idle process, gives
  some processes no slot at all when N exceeds the agreed concurrency, and exceeds the
  total while processes come and go. The database costs two short statements per request
  (`python -m bench.throttle` measures them) against partner calls that take far longer.
  A slot a request gives back is kept by its process for `KEEP_S`, still held in the
  database under its lease: the process's next request to that partner takes it without
  a statement (and, with a rate, takes only its turn). Under load most requests then cost
  no statement for their slot; the total stays within the agreed concurrency, since a
  kept slot is a held slot. A slot is kept idle only when other slots were free as it was
  taken (so nobody was waiting for it then); when none was, it is handed straight to a
  request of this process that is waiting for that partner, if there is one, and goes
  back to the database otherwise. Either way only for `KEEP_FOR_S` after it was taken (so
  a process that keeps slots cannot shut others out for longer), and only to a request
  its lease outlasts. A process that holds every slot of a partner (in flight, kept,
  being given back, or about to be taken by a statement on its way) does not ask the
  database for one: none can be free there. Its requests wait for one of its own. And an
  answer that no slot was free stands for `POLL_S`, until a slot of this process goes
  back: the requests that arrive meanwhile wait in line without asking again. The takes
  of partners without a rate asked for in one turn of the event loop go to the database
  in one statement (`_take_many`), and the slots going back in one turn, or while the
  statement before them is on its way, in one more (`_give_backs`), as a database
  commits a group.
- `LocalThrottle` (SQLite, and whenever there is no database to share): the same rules in
  this process's memory. SQLite deployments run one process; the limits hold per process.

Rate is paced, not bursted: successive turns for one partner are `(1 + TURN_TOLERANCE_S +
ARRIVAL_SLACK_S) / rate` apart (by the database's clock), and a request goes only within
`TURN_TOLERANCE_S` of its turn. One that wakes later (its process was busy, its event loop
late) does not go late, bunched with the turns after it: it takes a new turn. So the
requests hedui sends within any one second are never more than `rate_per_s`, however late
its processes run: k + 1 requests span at least k spacings less the tolerance, and
`rate_per_s` spacings are one second plus the tolerance plus the slack; the slack is left
for the network and the partner's server, which shift arrivals a little each way. Each
process reads the database's clock through the quickest of its recent round trips (as NTP
does), so its error is at most half that round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import asyncpg
import structlog
from sqlalchemy import URL

from service import db
from service.connector.metrics import Metrics

log = structlog.get_logger(__name__)

TURN_SHARE = 0.8
"""A request waits for its turn at most this share of what remains of its budget; the rest
is left for the request itself."""
LEASE_GRACE_S = 5.0
"""A slot outlives its request's budget by this much before others may take it."""
POLL_S = 0.02
"""How often a process waiting for a slot held elsewhere looks again."""
KEEP_S = 0.2
"""How long a process keeps a slot its request has given back, for its next request to
the same partner, before it gives the slot back to the database."""
KEEP_FOR_S = 1.0
"""How long after taking a slot from the database a process may keep serving its own
requests with it: the longest another process waits for it because it was kept. At 0.05
and 0.25 s a slot served two or three 50 ms requests before going back, and the throttle
was eight statements per household; at 0.2 and 1 s, three or four (`bench/RESULTS.md`)."""
KEEP_MARGIN_S = 1.0
"""A kept slot serves a new request only if its lease outlasts that request's budget by
this much."""
TURN_TOLERANCE_S = 0.01
"""A request goes at most this long after its turn; one that wakes later takes a new
turn. Turns are spaced by this much more than 1/rate, so that a second of sends never
holds more than the rate."""
ARRIVAL_SLACK_S = 0.01
"""And by this much more again, for the network and the partner's own server, which shift
each arrival by a few milliseconds: a second of arrivals holds no more than the rate
either, unless two arrivals a second apart are shifted towards each other by more."""


class Starved(Exception):
    """No turn came within the request's budget: hedui's own congestion, not the partner's."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"no turn within the budget ({limit})")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Limits:
    """A partner's agreement: requests in flight at once, and per second (None: no rate)."""

    concurrency: int
    rate_per_s: float | None = None

    @property
    def spacing_s(self) -> float:
        """The time between two turns: 1/rate, and the tolerance of a late wake-up and the
        slack for the network on top (see the module's docstring): 1.02/rate."""
        if not self.rate_per_s:
            return 0.0
        return (1.0 + TURN_TOLERANCE_S + ARRIVAL_SLACK_S) / self.rate_per_s


@dataclass(frozen=True, slots=True)
class Permit:
    connector: str
    slot: int | None
    """What is held: the shared slot's number (SharedThrottle) or the size of the local
    semaphore (LocalThrottle); None: nothing."""
    waited_s: float
    turn_at: float | None = None
    """When the rate gave this request its turn (the database's epoch seconds, or the
    loop's clock in memory); None without a rate."""


class Throttle(Protocol):
    async def acquire(self, connector: str, limits: Limits, deadline: float) -> Permit:
        """Wait for this request's turn; `deadline` is on the loop's clock. Raises `Starved`
        when the turn would come too late."""
        ...

    async def release(self, permit: Permit) -> None:
        """Give the slot back (the request's answer has been read, or it failed)."""
        ...


class _Accounting:
    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics

    def waited(self, connector: str, *, slot_s: float, turn_s: float, queued: bool) -> None:
        """Account for one request's wait: `slot_s` until it held a slot (`queued` when it
        found none free at first), then `turn_s` until the rate's turn."""
        if self.metrics is None:
            return
        # In whole 1/1024ths of a second: their sums are exact binary fractions, so the
        # exposition never shows a long run of digits (which scanners take for ID numbers).
        self.metrics.throttle_wait.labels(connector).observe(round((slot_s + turn_s) * 1024) / 1024)
        if queued:
            self.metrics.throttle_waits.labels(connector, "concurrency").inc()
        if turn_s > 0.001:
            self.metrics.throttle_waits.labels(connector, "rate").inc()

    def late(self, connector: str) -> None:
        """A request woke too late for its turn and takes another."""
        if self.metrics is not None:
            self.metrics.throttle_late_turns.labels(connector).inc()

    def starved(self, connector: str, limit: str) -> None:
        log.info("partner_turn_starved", connector=connector, limit=limit)
        if self.metrics is not None:
            self.metrics.throttle_starved.labels(connector, limit).inc()


def _max_wait(deadline: float, now: float) -> float:
    return max(deadline - now, 0.0) * TURN_SHARE


class LocalThrottle(_Accounting):
    """The limits kept in this process's memory (one process per deployment)."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        super().__init__(metrics)
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._next_at: dict[str, float] = {}

    async def acquire(self, connector: str, limits: Limits, deadline: float) -> Permit:
        loop = asyncio.get_running_loop()
        started = loop.time()
        key = (connector, limits.concurrency)
        semaphore = self._slots.get(key)
        if semaphore is None:  # not made on every call only to be thrown away
            semaphore = self._slots[key] = asyncio.Semaphore(limits.concurrency)
        queued = semaphore.locked()
        if queued:
            try:
                async with asyncio.timeout_at(started + _max_wait(deadline, started)):
                    await semaphore.acquire()
            except TimeoutError:
                self.starved(connector, "concurrency")
                raise Starved("concurrency") from None
        else:  # a free slot is taken at once, without a timer to arm and cancel
            await semaphore.acquire()
        now = loop.time()
        turn_s, turn = 0.0, now
        if limits.rate_per_s:
            try:
                turn = await self._keep_turn(connector, limits, deadline)
            except BaseException:
                semaphore.release()
                raise
            turn_s = max(turn - now, 0.0)
        self.waited(connector, slot_s=now - started, turn_s=turn_s, queued=queued)
        turn_at = turn if limits.rate_per_s else None
        return Permit(connector, limits.concurrency, loop.time() - started, turn_at)

    async def _keep_turn(self, connector: str, limits: Limits, deadline: float) -> float:
        """Take the rate's next turn and sleep until it; a wake-up later than the tolerance
        takes a new turn (on the loop's clock). Returns the turn kept."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            turn = max(self._next_at.get(connector, now), now)
            if turn - now > _max_wait(deadline, now):
                self.starved(connector, "rate")
                raise Starved("rate")
            self._next_at[connector] = turn + limits.spacing_s
            if turn > now:
                await asyncio.sleep(turn - now)
            if loop.time() - turn <= TURN_TOLERANCE_S:
                return turn
            self.late(connector)

    async def release(self, permit: Permit) -> None:
        if permit.slot is not None:
            self._slots[(permit.connector, permit.slot)].release()

    async def aclose(self) -> None:
        """Nothing to close: the limits live in memory."""


class Lease(NamedTuple):
    """A slot this process took from the database (loop clock)."""

    until: float
    """Its lease lasts at least until then."""
    keep_until: float
    """It may serve this process's requests without a statement until then."""
    idle: bool
    """It may wait, kept, for this process's next request (other slots were free as it was
    taken); otherwise it only goes to a request already waiting."""


@dataclass(slots=True)
class _Wanted:
    """Requests for slots of one partner without a rate, gathered for one statement."""

    concurrency: int
    lease_s: float
    """The longest of their leases: every slot taken gets it."""
    answers: list[asyncio.Future[Taken]]


class Taken(NamedTuple):
    """One attempt at a slot and a turn."""

    slot: int | None
    """The slot taken; None when none was free, or the rate's turn was beyond the budget."""
    any_free: bool
    turn_at: float | None
    """The rate's turn, in the database's epoch seconds (None without a rate)."""
    kept: bool = False
    """The slot was one this process kept (see `KEEP_S`): no turn was taken with it."""


# A free slot and the rate's schedule are taken in one statement, or neither is: a request
# whose turn would come too late takes no slot, and one that finds no slot moves no turn.
# Parameters: $1 connector, $2 concurrency, $3 spacing (s), $4 longest wait for the rate's
# turn (s), $5 holder, $6 the slot's lease (s).
_TAKE = """
WITH free AS (
    SELECT slot FROM connector_throttle_slots
    WHERE connector = $1 AND slot < $2
      AND (holder IS NULL OR held_until < clock_timestamp())
    ORDER BY slot
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), paced AS (
    UPDATE connector_throttle_rates
    SET next_at = GREATEST(next_at, clock_timestamp())
        + CAST($3 AS double precision) * interval '1 second'
    WHERE connector = $1
      AND CAST($3 AS double precision) > 0
      AND EXISTS (SELECT 1 FROM free)
      AND next_at <= clock_timestamp() + CAST($4 AS double precision) * interval '1 second'
    RETURNING next_at
), taken AS (
    UPDATE connector_throttle_slots AS s
    SET holder = $5,
        held_until = clock_timestamp() + CAST($6 AS double precision) * interval '1 second'
    FROM free
    WHERE s.connector = $1 AND s.slot = free.slot
      AND (CAST($3 AS double precision) = 0 OR EXISTS (SELECT 1 FROM paced))
    RETURNING s.slot
)
SELECT
    (SELECT slot FROM taken) AS slot,
    EXISTS (SELECT 1 FROM free) AS any_free,
    (SELECT count(*) FROM connector_throttle_slots
     WHERE connector = $1 AND slot < $2
       AND (holder IS NULL OR held_until < clock_timestamp())) AS free_before,
    (SELECT CAST(EXTRACT(EPOCH FROM next_at) AS double precision) FROM paced) AS next_at,
    CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS double precision) AS db_now
"""
# Free slots for the requests of several partners that have no agreed rate, in one
# statement: up to `wanted` of each partner's, with the count of its free slots before.
# Parameters: $1 connectors, $2 their concurrencies, $3 slots wanted of each, $4 each one's
# lease (s), $5 holder.
_TAKE_MANY = """
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::double precision[])
        AS w(connector, concurrency, wanted, lease_s)
), free AS (
    SELECT w.connector, f.slot, w.lease_s
    FROM wanted AS w
    CROSS JOIN LATERAL (
        SELECT s.slot FROM connector_throttle_slots AS s
        WHERE s.connector = w.connector AND s.slot < w.concurrency
          AND (s.holder IS NULL OR s.held_until < clock_timestamp())
        ORDER BY s.slot
        LIMIT w.wanted
        FOR UPDATE SKIP LOCKED
    ) AS f
), taken AS (
    UPDATE connector_throttle_slots AS s
    SET holder = $5,
        held_until = clock_timestamp() + free.lease_s * interval '1 second'
    FROM free
    WHERE s.connector = free.connector AND s.slot = free.slot
    RETURNING s.connector, s.slot
)
SELECT
    w.connector,
    ARRAY(SELECT t.slot FROM taken AS t WHERE t.connector = w.connector ORDER BY t.slot)
        AS slots,
    (SELECT count(*) FROM connector_throttle_slots AS s
     WHERE s.connector = w.connector AND s.slot < w.concurrency
       AND (s.holder IS NULL OR s.held_until < clock_timestamp())) AS free_before,
    CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS double precision) AS db_now
FROM wanted AS w
"""
# A new turn for a request that holds its slot but woke too late for its turn.
# $1 connector, $2 spacing (s), $3 longest wait for the turn (s).
_RETAKE = """
WITH paced AS (
    UPDATE connector_throttle_rates
    SET next_at = GREATEST(next_at, clock_timestamp())
        + CAST($2 AS double precision) * interval '1 second'
    WHERE connector = $1
      AND next_at <= clock_timestamp() + CAST($3 AS double precision) * interval '1 second'
    RETURNING next_at
)
SELECT
    (SELECT CAST(EXTRACT(EPOCH FROM next_at) AS double precision) FROM paced) AS next_at,
    CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS double precision) AS db_now
"""
# $1 connectors, $2 their slots (pairwise), $3 holder.
_GIVE_BACK = """
UPDATE connector_throttle_slots AS s SET holder = NULL, held_until = NULL
FROM unnest($1::text[], $2::int[]) AS g(connector, slot)
WHERE s.connector = g.connector AND s.slot = g.slot AND s.holder = $3
"""
# $1 holder: every slot a closing process still holds.
_GIVE_BACK_ALL = """
UPDATE connector_throttle_slots SET holder = NULL, held_until = NULL WHERE holder = $1
"""
# $1 connector, $2 concurrency.
_ENSURE_SLOTS = """
INSERT INTO connector_throttle_slots (connector, slot)
SELECT $1, generate_series(0, $2 - 1)
ON CONFLICT DO NOTHING
"""
# $1 connector.
_ENSURE_RATE = """
INSERT INTO connector_throttle_rates (connector, next_at) VALUES ($1, clock_timestamp())
ON CONFLICT DO NOTHING
"""
POOL_SIZE = 20
"""Connections of the throttle's own pool, per process."""
CLOCK_EPOCH_S = 30.0
"""How long a reading of the database's clock is trusted: the clocks of two machines
drift apart, so each process reads the offset afresh from its round trips of the last
one or two such periods."""


ROUNDING_S = 1e-9
"""How far two clock readings' bounds may miss each other by floating-point rounding alone
(a nanosecond: far below any round trip) and still be taken as agreeing."""


class DatabaseClock:
    """The database's clock as this process sees it: `database - time.time()`.

    Every statement of the throttle reads `clock_timestamp()`; the statement ran somewhere
    between sending it and reading its answer, so each round trip bounds the offset from
    both sides, and the tightest bounds of recent round trips give it (NTP's way). A busy
    event loop that reads an answer late widens that round trip's bounds, and the quicker
    round trips keep the estimate; its error is at most half the quickest one."""

    def __init__(self) -> None:
        self._high = math.inf
        self._low = -math.inf
        self._since: float | None = None
        self._previous: tuple[float, float] | None = None

    def observe(self, sent: float, received: float, database_now: float) -> None:
        """One round trip: the statement was sent at `sent` and answered by `received`
        (both `time.time()`), and read `database_now` on the database's clock."""
        high, low = database_now - sent, database_now - received
        if self._since is None or received - self._since > CLOCK_EPOCH_S:
            recent = self._since is not None and received - self._since <= 2 * CLOCK_EPOCH_S
            self._previous = (self._high, self._low) if recent else None
            self._high, self._low, self._since = math.inf, -math.inf, received
        if low > self._high + ROUNDING_S or high < self._low - ROUNDING_S:
            # Bounds that cannot both hold: a clock was stepped. Start again from this one.
            # (Not bounds that miss by a rounding of the subtractions above: two round
            # trips that took no time at all give the same offset, give or take 1e-16.)
            self._high, self._low, self._previous = high, low, None
            return
        self._high, self._low = min(self._high, high), max(self._low, low)

    @property
    def offset(self) -> float:
        high, low = self._high, self._low
        if self._previous is not None:
            both = min(high, self._previous[0]), max(low, self._previous[1])
            if both[1] <= both[0] + ROUNDING_S:
                high, low = both
        return (high + low) / 2


class SharedThrottle(_Accounting):
    """The limits kept in PostgreSQL, shared by every process of the deployment."""

    def __init__(self, url: URL, metrics: Metrics | None = None) -> None:
        super().__init__(metrics)
        # The driver's own DSN: the throttle talks to asyncpg directly (see `_connection`).
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.clock = DatabaseClock()
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._ensured: dict[tuple[str, int, bool], asyncio.Future[None]] = {}
        """Each partner's rows made (or being made: the first takes at start-up wait for
        one statement, not each for its own)."""
        self._queues: dict[str, asyncio.Lock] = {}
        self._released: dict[str, asyncio.Event] = {}
        self._leases: dict[tuple[str, int], Lease] = {}
        """Slots this process holds (see `KEEP_S`): until when their lease surely lasts,
        until when they may be kept, and whether idle."""
        self._kept: dict[str, dict[int, asyncio.TimerHandle]] = {}
        """Slots given back by their request and kept here a moment (see `KEEP_S`)."""
        self._returning: dict[str, set[int]] = {}
        """Slots being given back: held in the database until their statement has run."""
        self._taking: dict[str, int] = {}
        """Takes on their way to the database, per partner."""
        self._found_none: dict[str, float] = {}
        """When a take last found no free slot, per partner (loop clock)."""
        self._wanted: dict[str, _Wanted] = {}
        """Takes of partners without a rate asked for in this turn of the event loop: they
        go to the database together, in one statement, at its end (`_take_many`)."""
        self._to_give_back: list[tuple[str, int]] = []
        self._given_back: asyncio.Future[None] | None = None
        """When the slots in `_to_give_back` are back in the database."""
        self._statements: set[asyncio.Task[None]] = set()
        """Statements on their way that no request awaits: takes and give-backs of several
        requests' slots, and the give-backs of slots let go (`_let_go`)."""
        self._giving = False
        """A statement giving slots back is on its way: the next ones wait for it."""
        self._closing = False
        """`aclose` has begun: no slot is taken any more, and no pool opened again."""

    @classmethod
    def connect(cls, url: URL, metrics: Metrics | None = None) -> SharedThrottle:
        """A throttle over `url`'s database, with connections of its own (opened at the
        first request)."""
        return cls(url, metrics)

    async def aclose(self) -> None:
        self._closing = True
        # Takes asked for in this turn of the loop are not sent: nothing of this process
        # calls a partner any more.
        wanted, self._wanted = self._wanted, {}
        for answer in _unanswered(wanted.values()):
            answer.set_result(_NONE_FREE)
        kept = [(connector, slot) for connector, slots in self._kept.items() for slot in slots]
        for connector, slot in kept:
            self._unkeep(connector, slot).cancel()
        if self._pool is not None:
            await asyncio.gather(*(self._give_back(connector, slot) for connector, slot in kept))
            while self._statements:  # and those started while waiting for them
                await asyncio.gather(*self._statements, return_exceptions=True)
            # Whatever this process still holds in the database (a request cancelled as
            # the server stopped, whose give-back had not run): nothing of this process
            # calls a partner any more, and a server started next should not wait for
            # these leases to run out (its start-up check would find no slot).
            try:
                async with self._connection() as connection:
                    await connection.execute(_GIVE_BACK_ALL, self.holder)
            except Exception as error:
                log.warning("throttle_release_failed", error_type=type(error).__name__)
            self._leases.clear()
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the throttle's own asyncpg pool.

        Each statement is one transaction, prepared once per connection and sent without
        the SQLAlchemy layer: a turn is taken and given back on every partner request, and
        that layer cost about 0.6 ms of CPU per statement (`python -m bench.throttle`). The
        connections commit without waiting for the disk: a turn is worth nothing after a
        crash of the server, and waiting for each commit to be flushed would cost far more
        than the statement itself."""
        if self._pool is None:
            if self._closing:
                raise ConnectionError("the partner throttle is closed")
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=0,
                        max_size=POOL_SIZE,
                        reset=_nothing_to_reset,
                        server_settings={
                            "synchronous_commit": "off",
                            "application_name": "hedui throttle",
                        },
                    )
        async with self._pool.acquire() as connection:
            yield connection

    async def _fetch(self, statement: str, *arguments: object) -> asyncpg.Record:
        """One statement's row, its round trip read into the clock."""
        async with self._connection() as connection:
            sent = time.time()
            row = await connection.fetchrow(statement, *arguments)
            received = time.time()
        assert row is not None  # noqa: S101 - both statements select one row without FROM
        self.clock.observe(sent, received, row["db_now"])
        return row

    async def _execute(self, statement: str, *arguments: object) -> None:
        async with self._connection() as connection:
            await connection.execute(statement, *arguments)

    async def _fetch_all(self, statement: str, *arguments: object) -> list[asyncpg.Record]:
        """One statement's rows (each with `db_now`), its round trip read into the clock."""
        async with self._connection() as connection:
            sent = time.time()
            rows = await connection.fetch(statement, *arguments)
            received = time.time()
        if rows:
            self.clock.observe(sent, received, rows[0]["db_now"])
        return rows

    async def acquire(self, connector: str, limits: Limits, deadline: float) -> Permit:
        loop = asyncio.get_running_loop()
        started = loop.time()
        queue = self._queues.setdefault(connector, asyncio.Lock())
        # Nobody of this process waits for this partner: try at once.
        first = None if queue.locked() else await self._reuse_or_try(connector, limits, deadline)
        queued = first is None or first.slot is None
        if first is not None and first.slot is not None:
            taken = first
        else:
            # Wait in line: one request per partner and process asks the database again
            # (whenever a slot comes free here, or every few ms), the others in order.
            async with queue:
                taken = await self._wait_for_slot(connector, limits, deadline, started)
        assert taken.slot is not None  # noqa: S101 - both ways end with a slot
        slot_s = loop.time() - started
        permit = Permit(connector, taken.slot, 0.0)
        turn_at = taken.turn_at
        if taken.kept and limits.rate_per_s:
            try:
                turn_at = await self._retake(connector, limits, deadline)
            except BaseException:
                await self.release(permit)
                raise
        if turn_at is not None:
            try:
                turn_at = await self._keep_turn(connector, limits, deadline, turn_at)
            except BaseException:
                await self.release(permit)
                raise
        turn_s = loop.time() - started - slot_s
        self.waited(connector, slot_s=slot_s, turn_s=turn_s, queued=queued)
        return Permit(connector, taken.slot, loop.time() - started, turn_at)

    async def _keep_turn(
        self, connector: str, limits: Limits, deadline: float, turn_at: float
    ) -> float:
        """Sleep until the turn (on this process's reading of the database's clock); a
        wake-up later than the tolerance takes a new turn. Returns the turn kept."""
        while True:
            delay = turn_at - self.clock.offset - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.time() + self.clock.offset - turn_at <= TURN_TOLERANCE_S:
                return turn_at
            self.late(connector)
            turn_at = await self._retake(connector, limits, deadline)

    async def _retake(self, connector: str, limits: Limits, deadline: float) -> float:
        """A new turn for a request that holds its slot; `Starved` when it would come after
        the budget (or the database cannot be reached within it)."""
        loop = asyncio.get_running_loop()
        backoff = POLL_S
        while True:
            now = loop.time()
            try:
                row = await self._fetch(
                    _RETAKE, connector, limits.spacing_s, _max_wait(deadline, now)
                )
            except Exception as error:
                if not db.is_database_unavailable(error):
                    raise
                log.warning("throttle_unavailable", error_type=type(error).__name__)
                backoff = min(backoff * 2, 0.5)
                if loop.time() + backoff < now + _max_wait(deadline, now):
                    await asyncio.sleep(backoff)
                    continue
                row = None
            if row is None or row["next_at"] is None:
                self.starved(connector, "rate")
                raise Starved("rate")
            return float(row["next_at"]) - limits.spacing_s

    async def _try(self, connector: str, limits: Limits, deadline: float) -> Taken | None:
        """One attempt (see `Taken`), None while the database cannot be reached; `Starved`
        when a slot is free but the rate's turn is beyond the budget."""
        now = asyncio.get_running_loop().time()
        try:
            taken = await self._take(connector, limits, _max_wait(deadline, now), deadline - now)
        except Exception as error:
            if not db.is_database_unavailable(error):
                raise
            log.warning("throttle_unavailable", error_type=type(error).__name__)
            return None
        if taken.slot is None and taken.any_free:
            self.starved(connector, "rate")
            raise Starved("rate")
        return taken

    async def _wait_for_slot(
        self, connector: str, limits: Limits, deadline: float, started: float
    ) -> Taken:
        loop = asyncio.get_running_loop()
        released = self._released.setdefault(connector, asyncio.Event())
        backoff = POLL_S
        while True:
            released.clear()
            taken = await self._reuse_or_try(connector, limits, deadline)
            if taken is not None and taken.slot is not None:
                return taken
            # No slot free (or no database): wait for one to come free here, or look again.
            backoff = POLL_S if taken is not None else min(backoff * 2, 0.5)
            if loop.time() + backoff >= started + _max_wait(deadline, started):
                self.starved(connector, "concurrency")
                raise Starved("concurrency")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await released.wait()

    async def release(self, permit: Permit) -> None:
        if permit.slot is None:
            return
        connector, slot = permit.connector, permit.slot
        loop = asyncio.get_running_loop()
        lease = self._leases.get((connector, slot))
        queue = self._queues.get(connector)
        waiting = queue is not None and queue.locked()
        if (
            self._pool is not None
            and lease is not None
            and lease.keep_until > loop.time()
            and (lease.idle or waiting)
        ):
            # Kept a moment for this process's next request (still held in the database),
            # or handed to the one waiting, which the event below wakes.
            kept = self._kept.setdefault(connector, {})
            kept[slot] = loop.call_later(
                KEEP_S if lease.idle else POLL_S, self._let_go, connector, slot
            )
            released = self._released.get(connector)
            if released is not None:
                released.set()
            return
        # Shielded: a request cancelled at its deadline still gives its slot back.
        await asyncio.shield(self._give_back(connector, slot))

    def _reuse(self, connector: str, limits: Limits, deadline: float) -> Taken | None:
        """A slot this process keeps whose lease outlasts this request's budget."""
        kept = self._kept.get(connector)
        if not kept:
            return None
        now = asyncio.get_running_loop().time()
        for slot in list(kept):
            lease = self._leases.get((connector, slot))
            if (
                slot < limits.concurrency
                and lease is not None
                and lease.keep_until > now
                and lease.until >= deadline + KEEP_MARGIN_S
            ):
                self._unkeep(connector, slot).cancel()
                return Taken(slot, True, None, kept=True)
        return None

    async def _reuse_or_try(self, connector: str, limits: Limits, deadline: float) -> Taken | None:
        reused = self._reuse(connector, limits, deadline)
        if reused is not None:
            return reused
        if self._holds_all(connector, limits):
            # Every slot is this process's (in flight or kept): none can be free in the
            # database, and asking would only cost a statement. One comes free here.
            return Taken(None, False, None)
        found_none = self._found_none.get(connector)
        if found_none is not None and asyncio.get_running_loop().time() - found_none < POLL_S:
            # The database said a moment ago that no slot was free, and no slot of this
            # process has gone back since: the answer stands for the polling interval.
            return Taken(None, False, None)
        taken = await self._try(connector, limits, deadline)
        if taken is not None and taken.slot is None:
            self._found_none[connector] = asyncio.get_running_loop().time()
        elif taken is not None:
            self._found_none.pop(connector, None)
        return taken

    def _holds_all(self, connector: str, limits: Limits) -> bool:
        """Whether this process holds every slot of the partner's concurrency, each under
        a lease still running (a lease run out is free for others in the database)."""
        now = asyncio.get_running_loop().time()
        held = sum(
            1
            for (name, slot), lease in self._leases.items()
            if name == connector and slot < limits.concurrency and lease.until > now
        )
        held += sum(1 for slot in self._returning.get(connector, ()) if slot < limits.concurrency)
        # A take on its way may get the last free one.
        held += self._taking.get(connector, 0)
        return held >= limits.concurrency

    def _unkeep(self, connector: str, slot: int) -> asyncio.TimerHandle:
        return self._kept[connector].pop(slot)

    def _let_go(self, connector: str, slot: int) -> None:
        """A kept slot nobody here took in time goes back to the database."""
        self._unkeep(connector, slot)
        self._start(self._give_back(connector, slot))

    async def _give_back(self, connector: str, slot: int) -> None:
        returning = self._returning.setdefault(connector, set())
        if self._leases.pop((connector, slot), None) is not None:
            # Still held in the database until the statement below has run.
            returning.add(slot)
        try:
            # Shielded: the group's future is every give-back's in the group, and one of
            # them cancelled (a closing cut short) must not cancel the others.
            await asyncio.shield(self._gone_back(connector, slot))
        finally:
            returning.discard(slot)
            self._found_none.pop(connector, None)
            released = self._released.get(connector)
            if released is not None:
                released.set()

    def _gone_back(self, connector: str, slot: int) -> asyncio.Future[None]:
        """The slot back in the database: given back with every other slot of this process
        going back in this turn of the event loop, or while the statement before was on its
        way (one statement for all of them, as a database commits a group)."""
        self._to_give_back.append((connector, slot))
        if self._given_back is None:
            loop = asyncio.get_running_loop()
            self._given_back = loop.create_future()
            if not self._giving:
                loop.call_soon(self._start, self._give_backs())
        return self._given_back

    def _start(self, statement: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(statement)
        self._statements.add(task)
        task.add_done_callback(self._statements.discard)

    async def _give_backs(self) -> None:
        self._giving = True
        try:
            while self._to_give_back:
                slots, done = self._to_give_back, self._given_back
                self._to_give_back, self._given_back = [], None
                try:
                    await self._execute(
                        _GIVE_BACK,
                        [connector for connector, _ in slots],
                        [slot for _, slot in slots],
                        self.holder,
                    )
                except Exception as error:
                    # The slots come free when their `held_until` passes.
                    log.warning("throttle_release_failed", error_type=type(error).__name__)
                finally:
                    if done is not None and not done.done():
                        done.set_result(None)
        finally:
            self._giving = False
            if self._to_give_back:
                # Cancelled (the process is closing) with slots still to go: nobody waits
                # for a statement that will not be sent. They come free with `aclose`'s
                # give-back of everything this process holds, or when their leases end.
                self._to_give_back = []
                left, self._given_back = self._given_back, None
                if left is not None and not left.done():
                    left.set_result(None)

    async def _ensure(self, connector: str, limits: Limits) -> None:
        async with self._connection() as connection:
            await connection.execute(_ENSURE_SLOTS, connector, limits.concurrency)
            if limits.rate_per_s:
                await connection.execute(_ENSURE_RATE, connector)

    async def _take(
        self, connector: str, limits: Limits, max_wait: float, remaining: float
    ) -> Taken:
        key = (connector, limits.concurrency, bool(limits.rate_per_s))
        ensured = self._ensured.get(key)
        if ensured is None:
            ensured = self._ensured[key] = asyncio.ensure_future(self._ensure(connector, limits))

            def forget_failed(made: asyncio.Future[None], key: tuple[str, int, bool] = key) -> None:
                # The database unavailable, or closing: the next take makes them.
                if made.cancelled() or made.exception() is not None:
                    self._ensured.pop(key, None)

            ensured.add_done_callback(forget_failed)
        if not ensured.done():
            await asyncio.shield(ensured)
        else:
            ensured.result()  # its error, should it have failed a moment ago
        lease_s = max(remaining, 0.0) + LEASE_GRACE_S
        wanted = self._wanted.get(connector)
        if not limits.rate_per_s and (wanted is None or wanted.concurrency == limits.concurrency):
            return await self._take_together(connector, limits.concurrency, lease_s)
        sent = asyncio.get_running_loop().time()
        self._taking[connector] = self._taking.get(connector, 0) + 1
        try:
            row = await self._fetch(
                _TAKE,
                connector,
                limits.concurrency,
                limits.spacing_s,
                max_wait,
                self.holder,
                lease_s,
            )
        finally:
            self._taking[connector] -= 1
        next_at = row["next_at"]
        turn_at = float(next_at) - limits.spacing_s if next_at is not None else None
        if row["slot"] is not None:
            # Its lease began after this statement was sent: it lasts at least this long.
            # Another slot was free too: this one may be kept idle for this process's next
            # requests; otherwise only handed to one already waiting.
            self._leases[(connector, row["slot"])] = Lease(
                sent + lease_s, sent + KEEP_FOR_S, idle=row["free_before"] > 1
            )
        return Taken(row["slot"], bool(row["any_free"]), turn_at)

    async def _take_together(self, connector: str, concurrency: int, lease_s: float) -> Taken:
        """A free slot of a partner without a rate, asked for with every other such take of
        this process in this turn of the event loop, in one statement (`_take_many`): the
        first requests of a household's sources, of every household starting at once."""
        if self._closing:
            return _NONE_FREE
        loop = asyncio.get_running_loop()
        wanted = self._wanted.get(connector)
        if wanted is None:
            if not self._wanted:
                loop.call_soon(self._take_wanted)
            wanted = self._wanted[connector] = _Wanted(concurrency, lease_s, [])
        wanted.lease_s = max(wanted.lease_s, lease_s)
        answer: asyncio.Future[Taken] = loop.create_future()
        wanted.answers.append(answer)
        self._taking[connector] = self._taking.get(connector, 0) + 1
        try:
            return await answer
        except BaseException:
            # Cancelled as the statement answered, before this request ran again: the
            # slot it was handed goes back, or it would be held for nobody till its lease
            # ends (and, with a concurrency of one, shut every request out till then).
            if answer.done() and not answer.cancelled() and answer.exception() is None:
                taken = answer.result()
                if taken.slot is not None:
                    self._start(self._give_back(connector, taken.slot))
            raise
        finally:
            self._taking[connector] -= 1

    def _take_wanted(self) -> None:
        wanted, self._wanted = self._wanted, {}
        if wanted:  # not answered by a closing meanwhile
            self._start(self._take_many(wanted))

    async def _take_many(self, wanted: dict[str, _Wanted]) -> None:
        """One statement for the slots `wanted`; each request is answered with a slot, or
        with none when its partner had no more free, or with the statement's error."""
        # Slots for the requests still waiting (not one cancelled since it asked).
        counts = {connector: len(_unanswered([each])) for connector, each in wanted.items()}
        connectors = [connector for connector, count in counts.items() if count]
        if not connectors:
            return
        sent = asyncio.get_running_loop().time()
        try:
            rows = await self._fetch_all(
                _TAKE_MANY,
                connectors,
                [wanted[connector].concurrency for connector in connectors],
                [counts[connector] for connector in connectors],
                [wanted[connector].lease_s for connector in connectors],
                self.holder,
            )
        except BaseException as error:
            # Each request has the error as its own (the database unavailable: it waits
            # and asks again, as after a take of its own); the statement's task ends.
            for answer in _unanswered(wanted.values()):
                if isinstance(error, Exception):
                    answer.set_exception(error)
                else:
                    answer.cancel()
            if isinstance(error, Exception):
                return
            raise
        for row in rows:
            self._hand_out(
                row["connector"],
                wanted[row["connector"]],
                list(row["slots"]),
                idle=row["free_before"] > len(row["slots"]),
                sent=sent,
            )
        for answer in _unanswered(wanted.values()):  # of a partner the statement left out
            answer.set_result(_NONE_FREE)

    def _hand_out(
        self, connector: str, wanted: _Wanted, slots: list[int], *, idle: bool, sent: float
    ) -> None:
        """The slots one statement took of `connector`, one to each request still waiting
        for one, in order (none left: none for it); `idle` as `_take`'s (other slots were
        free besides those taken)."""
        for slot in slots:
            self._leases[(connector, slot)] = Lease(
                sent + wanted.lease_s, sent + KEEP_FOR_S, idle=idle
            )
        for answer in _unanswered([wanted]):  # not those cancelled meanwhile
            answer.set_result(Taken(slots.pop(0), True, None) if slots else _NONE_FREE)
        for slot in slots:  # taken for requests cancelled meanwhile
            self._start(self._give_back(connector, slot))


_NONE_FREE = Taken(None, False, None)


def _unanswered(wanted: Iterable[_Wanted]) -> list[asyncio.Future[Taken]]:
    """The requests of `wanted` still waiting for their answer (not cancelled since)."""
    return [answer for each in wanted for answer in each.answers if not answer.done()]


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """The throttle's statements leave no session state behind (no locks held past the
    statement, no LISTEN, no settings changed): a connection goes back to the pool as it
    is, without the round trip of asyncpg's default reset."""
