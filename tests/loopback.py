"""A raw TCP server on the loopback for tests that need a peer no HTTP framework would be:
one that never answers, answers garbage, or never stops answering."""

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def loopback_server(handle: Handler) -> AsyncIterator[str]:
    """Serve each connection with `handle` on a free port of 127.0.0.1; yields the base
    URL (`http://127.0.0.1:PORT`). Closed on the way out."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (taken and given back): connecting to it
    is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
