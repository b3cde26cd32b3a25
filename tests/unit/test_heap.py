"""A long-running process's garbage collector: frozen start-up heap, rarer young collections."""

import gc
from collections.abc import Iterator

import pytest

from service import heap


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, afterwards."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_the_process_holds_and_raises_the_young_threshold(
    collector: None,
) -> None:
    _, older, oldest = gc.get_threshold()
    held = [[n] for n in range(1000)]  # containers alive when the process has started
    heap.settle(20_000)
    assert gc.get_threshold() == (20_000, older, oldest)
    assert gc.get_freeze_count() >= len(held)


def test_zero_leaves_the_collector_as_python_set_it(collector: None) -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    heap.settle(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
