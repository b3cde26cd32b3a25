"""Retrying that costs nothing until an attempt fails.

Shared by the partner requests (`connectors.http`) and the database's retries
(`service.db`); it needs only tenacity, so the database layer uses it without loading the
HTTP layer.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying

T = TypeVar("T")


async def retried_after_first(
    attempt: Callable[[], Awaitable[T]],
    *,
    retryable: Callable[[BaseException], bool],
    retrying: Callable[[], AsyncRetrying],
) -> T:
    """`attempt()`, and only when it fails with a `retryable` error, again under the
    tenacity object `retrying()` builds then: a first attempt that succeeds (almost every
    one) costs no retry machinery. Tenacity's first attempt is the one already made: its
    failure is given back as it came, so stopping, waiting and whatever counts retries
    see it exactly as if tenacity had made it. Anything not retryable is raised at once."""
    try:
        return await attempt()
    except Exception as error:
        if not retryable(error):
            raise
        first_failure: BaseException | None = error

    async def again() -> T:
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return await attempt()

    result: T = await retrying()(again)
    return result
