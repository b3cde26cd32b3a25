"""Seeded people: kept in memory for lookups, written through to SQLite for restarts.

Agencies answer thousands of queries a second, so a lookup never touches the disk: every
seeded person is loaded once at start-up, and a person nobody seeded falls through to
synthetic records (load tests need a population), or, with synthetic people off, to no
records at all (a hand-made household then shows only what was seeded).
The cache assumes one process owns the file, as the in-memory bank
inquiries do anyway.
"""

import logging
import sqlite3
import weakref
from pathlib import Path

from pydantic import ValidationError

from sandbox.records import Person
from sandbox.synthetic import synthetic_person
from schemas.identity import id_number_problem, mask_id_number

logger = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS people (id_number TEXT PRIMARY KEY, record TEXT NOT NULL)"
_UPSERT = (
    "INSERT INTO people (id_number, record) VALUES (?, ?) "
    "ON CONFLICT (id_number) DO UPDATE SET record = excluded.record"
)


def _open(data_path: Path) -> sqlite3.Connection:
    data_path.parent.mkdir(parents=True, exist_ok=True)
    # One connection for the store's lifetime: closing the last connection to a WAL
    # database checkpoints it, which made every write cost milliseconds instead of ~20 us.
    # Only the event loop uses it, one call at a time, whichever thread built the app.
    connection = sqlite3.connect(data_path, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: no fsync per commit
    with connection:
        connection.execute(_SCHEMA)
    return connection


def _nobody(id_number: str) -> Person | None:
    """A valid ID number no agency holds anything about; None when it is not valid."""
    if id_number_problem(id_number) is not None:
        return None
    return Person.model_construct(id_number=id_number)


class People:
    """Who the agencies know: seeded people first, then synthetic records for everyone else,
    or (`synthetic=False`) no records for anyone else."""

    def __init__(self, data_path: Path | None, *, synthetic: bool = True) -> None:
        self.synthetic = synthetic
        self._seeded: dict[str, Person] = {}
        self._db: sqlite3.Connection | None = None
        if data_path is not None:
            self._db = _open(data_path)
            # Closed when the store goes away (or at exit), never left for the GC to find.
            weakref.finalize(self, self._db.close)
            self._load(self._db)

    def _load(self, db: sqlite3.Connection) -> None:
        for id_number, record in db.execute("SELECT id_number, record FROM people"):
            try:
                self._seeded[id_number] = Person.model_validate_json(record)
            except ValidationError:
                # A row written by an older layout: skip it rather than refuse to start.
                logger.warning("skipping unreadable seeded person %s", mask_id_number(id_number))

    def __len__(self) -> int:
        return len(self._seeded)

    def lookup(self, id_number: str) -> Person | None:
        """Records for an ID number as a partner received it; None when it is not valid."""
        key = id_number.upper()
        seeded = self._seeded.get(key)
        if seeded is not None:
            return seeded
        if self.synthetic:
            return synthetic_person(key)
        return _nobody(key)

    def upsert(self, person: Person) -> None:
        if self._db is not None:
            # Synchronous on purpose: a write takes tens of microseconds, and doing it on
            # the event loop keeps the file in the same order as the cache.
            with self._db:
                self._db.execute(_UPSERT, (person.id_number, person.model_dump_json()))
        self._seeded[person.id_number] = person

    def clear(self) -> int:
        """Forget every seeded person; returns how many there were."""
        if self._db is not None:
            with self._db:
                self._db.execute("DELETE FROM people")
        count = len(self._seeded)
        self._seeded.clear()
        return count
