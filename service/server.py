"""How `hedui serve` runs uvicorn: timeouts against callers that hold connections.

uvicorn closes a connection idle between requests after its keep-alive timeout, but has no
timeout for a request's headers: a caller that connects and sends nothing, or sends its
headers a byte at a time (slowloris), holds a connection for as long as it likes. Here the
headers of every request must be in within `header_timeout_s` of the connection opening
(or of the request's first byte, on a kept-alive connection), or the connection is closed.
The body's own timeout is the request guard's (`service/guard.py`, 408).
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import get_settings

KEEP_ALIVE_S = 5
"""Idle time between two requests on one connection (uvicorn's default, made explicit)."""


class TimedHeadersProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's headers
    (`HEDUI_HEADER_TIMEOUT_S`, read from the environment by every process, so that
    `hedui serve --workers N` passes it on without pickling anything)."""

    header_timeout_s: float | None = None
    """None: the setting's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_due: asyncio.TimerHandle | None = None
        self._timeout_s = self.header_timeout_s or get_settings().header_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._expect_headers()

    def on_headers_complete(self) -> None:
        self._headers_in()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_in()
        super().connection_lost(exc)

    def _expect_headers(self) -> None:
        self._headers_in()
        self._headers_due = self.loop.call_later(self._timeout_s, self._headers_late)

    def _headers_in(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if not self.transport.is_closing():
            self.transport.close()
