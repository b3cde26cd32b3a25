"""Test-side outside world the sandbox cannot imitate: a partner that answers only when the
test lets it (and counts every query), and a TCP proxy that can cut hedui off its database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import ClassVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.base import CheckResult, ConnectorConfig, MalformedResponse
from connectors.registry import ConnectorRegistry
from schemas.evidence import Evidence, HouseholdQuery


class GatePartner:
    """A partner at `/{name}/query` that holds every query until `open()` and counts them."""

    def __init__(self, name: str = "gated") -> None:
        self.name = name
        self.queries = 0
        self.arrived = asyncio.Event()
        self._open = asyncio.Event()
        self.app = Starlette(routes=[Route(f"/{name}/query", self._query, methods=["POST"])])

    def open(self) -> None:
        self._open.set()

    async def _query(self, request: Request) -> JSONResponse:
        await request.body()
        self.queries += 1
        self.arrived.set()
        await self._open.wait()
        return JSONResponse({"records": []})


class GatedConnector:
    """Asks a `GatePartner` over real HTTP; an empty answer means "no record"."""

    title: ClassVar[str] = "gated test partner"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(self, name: str = "gated") -> None:
        self.name = name  # type: ignore[misc]

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        return CheckResult(ok=True)

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        response = await client.post(
            f"{config.base_url}/query", json={"members": len(household.members)}, timeout=60
        )
        if response.status_code != 200:
            raise MalformedResponse(f"status {response.status_code}")
        return Evidence(answered=household.id_numbers)


def gated_registry(name: str = "gated") -> ConnectorRegistry:
    registry = ConnectorRegistry()
    registry.add(GatedConnector(name), origin="plugin")
    return registry


class TcpProxy:
    """A loopback TCP proxy in front of PostgreSQL: `cut()` drops every connection and
    refuses new ones (as during a database restart); `restore()` lets them through again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0)  # let the aborted transports close their sockets

    async def restore(self) -> None:
        await self.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # cut while this connection was being opened
            writer.transport.abort()
            upstream_writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def close(self) -> None:
        await self.cut()


@contextlib.asynccontextmanager
async def proxied(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
