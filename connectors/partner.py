"""What every HTTP partner connector shares, so each source module holds only its wire format.

`PartnerConnector` implements the `Connector` protocol: it turns the service's config into
the connector's own `Config`, bounds the whole fetch by `timeout_s` and maps invalid records
to `MalformedResponse`. Whether an answer accounts for every member asked about is checked
for every connector alike, by `connectors.base.fetch_evidence`.
"""

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar, Generic, TypeVar, cast

import httpx
from pydantic import ValidationError

from connectors.base import CheckResult, ConnectorConfig, ConnectorError, MalformedResponse
from connectors.http import budget, request
from connectors.wire import WireModel, describe, parse_json
from schemas.evidence import Evidence, HouseholdQuery

ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)
T = TypeVar("T")


class PartnerConnector(ABC, Generic[ConfigT]):
    """Base of the built-in connectors: a subclass names its endpoints and maps its records."""

    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    kinds: ClassVar[tuple[str, ...]] = ()
    """The canonical record kinds it yields (`schemas.evidence`), as listed by the API."""

    health_path: ClassVar[str]
    """GET endpoint that proves the partner is up, relative to `base_url`."""
    health_model: ClassVar[type[WireModel]]
    """The documented healthy answer of a JSON partner."""

    @abstractmethod
    async def ask(
        self, household: HouseholdQuery, config: ConfigT, client: httpx.AsyncClient
    ) -> Evidence:
        """Ask the partner about every member (at least one) and say whom its answer covers.

        `Evidence.answered` lists the members the partner's answer speaks of, as the
        partner gave them: never the members asked about, unless the format lists only hits.
        """

    def parse_health(self, body: bytes) -> object:
        return parse_json(body, self.health_model)

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        own = self.own_config(config)
        started = time.perf_counter()
        try:
            async with budget(own):
                await request(
                    client, own, "GET", self.health_path, self.parse_health, about_people=False
                )
        except ConnectorError as error:
            return CheckResult(ok=False, detail=str(error), latency_ms=_ms_since(started))
        return CheckResult(ok=True, latency_ms=_ms_since(started))

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        own = self.own_config(config)
        if not household.members:
            return Evidence(answered=[])
        return await self.within_budget(own, lambda: self.ask(household, own, client))

    async def within_budget(self, config: ConfigT, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, bounded by `config.timeout_s`, with invalid records as `MalformedResponse`."""
        try:
            async with budget(config):
                return await call()
        except ValidationError as error:
            # A partner value that is fine on the wire but not as a record (a negative
            # balance, a third decimal place): the body is malformed all the same.
            raise MalformedResponse(describe(error)) from None

    def own_config(self, config: ConnectorConfig) -> ConfigT:
        """The connector's own `Config`, also when a caller passed a plain `ConnectorConfig`."""
        if not isinstance(config, self.Config):
            config = self.Config.model_validate(config.model_dump())
        return cast(ConfigT, config)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
