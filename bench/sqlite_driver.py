"""CPU per SQLite statement: SQLAlchemy's aiosqlite adapter against hedui's own.

In one run, on one database file (WAL, as hedui sets it up), interleaved rounds of:
- bare aiosqlite: the statement and the commit straight on an aiosqlite connection;
- SQLAlchemy's own adapter (`create_async_engine(url)`);
- hedui's (`service.db.create_engine`, which uses `service/sqlite_driver.py`: statements
  run in the event loop's thread);
each doing a one-row UPDATE in a transaction of its own, and a one-row SELECT. Printed: CPU
µs per operation of this process (every thread), the ratio to bare aiosqlite, and the
longest UPDATE + COMMIT seen (hedui's holds the event loop meanwhile: a WAL checkpoint
happens in some commit).

Run: `python -m bench.sqlite_driver [--operations 2000] [--rounds 3]`.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.db import create_engine

UPDATE = "UPDATE t SET b = 'x' WHERE a = 1"
SELECT = "SELECT a, b FROM t WHERE a = 1"

Operation = Callable[[], Awaitable[None]]


async def cpu_us(operation: Operation, count: int) -> tuple[float, float]:
    """CPU µs per operation, and the longest one's wall time in ms."""
    for _ in range(min(count, 200)):  # warm the pool and the statement cache
        await operation()
    longest = 0.0
    started = time.process_time()
    for _ in range(count):
        began = time.perf_counter()
        await operation()
        longest = max(longest, time.perf_counter() - began)
    return (time.process_time() - started) * 1e6 / count, longest * 1000


def engine_operations(engine: AsyncEngine) -> tuple[Operation, Operation]:
    update, select = text(UPDATE), text(SELECT)

    async def write() -> None:
        async with engine.begin() as connection:
            await connection.execute(update)

    async def read() -> None:
        async with engine.connect() as connection:
            (await connection.execute(select)).all()

    return write, read


Round = tuple[tuple[float, float], tuple[float, float]]
"""(write CPU µs, longest write ms), (read CPU µs, longest read ms)."""


async def measure(path: Path, count: int, rounds: int) -> dict[str, list[Round]]:
    url = f"sqlite+aiosqlite:///{path}"
    setup = create_engine(url)  # WAL and the pragmas hedui uses, for every client below
    async with setup.begin() as connection:
        await connection.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)"))
        await connection.execute(text("INSERT INTO t (a, b) VALUES (1, 'a')"))
    await setup.dispose()
    results: dict[str, list[Round]] = {}
    for _ in range(rounds):
        async with aiosqlite.connect(path) as bare:

            async def write() -> None:
                await bare.execute(UPDATE)
                await bare.commit()

            async def read() -> None:
                async with bare.execute(SELECT) as cursor:
                    await cursor.fetchall()

            results.setdefault("bare aiosqlite", []).append(
                (await cpu_us(write, count), await cpu_us(read, count))
            )
        for name, engine in (
            ("SQLAlchemy's aiosqlite adapter", create_async_engine(url)),
            ("hedui's (statements in the loop)", create_engine(url)),
        ):
            writing, reading = engine_operations(engine)
            results.setdefault(name, []).append(
                (await cpu_us(writing, count), await cpu_us(reading, count))
            )
            await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--operations", type=int, default=2000, help="per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        results = asyncio.run(measure(Path(directory) / "t.db", args.operations, args.rounds))
    bare_write = statistics.median(write for (write, _), _ in results["bare aiosqlite"])
    bare_read = statistics.median(read for _, (read, _) in results["bare aiosqlite"])
    print(f"CPU µs per operation (this process, every thread), median of {args.rounds} rounds")
    print(
        f"{'client':<34} {'UPDATE + COMMIT':>16} {'÷ bare':>7} {'SELECT':>8} {'÷ bare':>7} "
        f"{'longest write ms':>17}"
    )
    for name, rows in results.items():
        write = statistics.median(row[0][0] for row in rows)
        read = statistics.median(row[1][0] for row in rows)
        longest = max(row[0][1] for row in rows)
        print(
            f"{name:<34} {write:>16.0f} {write / bare_write:>6.1f}x "
            f"{read:>8.0f} {read / bare_read:>6.1f}x {longest:>17.2f}"
        )


if __name__ == "__main__":
    main()
