"""The garbage collector of a long-running hedui process (`hedui serve`, `hedui worker`).

CPython collects cycles whenever 700 more container objects have been made than freed, and
the whole heap whenever enough objects have survived into the oldest generation. A serving
process holds some 150,000 objects that live as long as it does (modules, classes, the
OpenAPI and pydantic schemas, SQLAlchemy's metadata and statement caches), and the objects
of the verifications in flight survive a few young collections each, so under load the
oldest generation kept filling and the whole heap was walked again and again: 1.6 s of a
process's CPU for 364 households (4.5 ms each), with pauses up to 170 ms
(`bench/RESULTS.md`, 2026-12-05).

Once the process has started, what exists then is moved out of the collector's sight
(`gc.freeze`: it is never walked again, and most of it is never freed anyway), and young
collections run every `HEDUI_GC_THRESHOLD` allocations instead of 700. A cycle of garbage
lives longer before it is found: in `bench/scale.py` the workers' RSS settled about 10 MB
higher.
"""

import gc

import structlog

log = structlog.get_logger(__name__)


def settle(threshold: int) -> None:
    """Freeze what the process holds once started; young collections every `threshold`
    allocations (0: leave the collector as Python set it)."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    log.debug("heap_settled", frozen=gc.get_freeze_count(), threshold=threshold)
