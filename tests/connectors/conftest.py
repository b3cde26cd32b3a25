"""Connector tests never wait between retries; the switch is restored after each test."""

from collections.abc import Iterator

import pytest

from connectors.testing import retry_testing


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with retry_testing(True):
        yield
