"""The contract every connector fulfils, and the errors it may raise.

Shaped after airbyte's source contract: a connector declares a pydantic `Config` (its
spec), confirms reachability with `check`, and `fetch`es canonical records for a whole
household. It receives the process-wide `httpx.AsyncClient`; it never creates one.
"""

from collections import Counter
from typing import ClassVar, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.evidence import Evidence, HouseholdQuery


class ConnectorConfig(BaseModel):
    """Settings every connector accepts; a connector subclasses it to add its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(description="Root URL of the partner agency's API, without trailing /")
    timeout_s: float = Field(
        default=10.0, gt=0, description="Budget for one household fetch, retries included"
    )
    request_timeout_s: float = Field(default=5.0, gt=0, description="Budget for one HTTP request")
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per request on transient errors"
    )
    max_response_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest body one partner answer may have (decoded); beyond it the "
        "source is an error, found while the body streams in, never after reading it all. "
        "Parsing a full 1 MiB answer holds up the event loop for a few tens of ms at most",
    )
    max_records: int = Field(
        default=5_000, ge=1, description="Most records one household fetch may return"
    )
    max_concurrency: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Most fetches of this connector in flight at once in one process "
        "(bulkhead); a fetch that finds no free slot within its budget is a timeout",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Caught here, at startup, rather than as an obscure error on the first request.
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")


class CheckResult(BaseModel):
    ok: bool
    detail: str | None = None
    latency_ms: float | None = None


class ConnectorError(Exception):
    """A partner answered in a way that yields no usable records.

    Messages must never contain a full ID number, a name or a balance: they are stored
    and shown to operators.
    """

    transient: ClassVar[bool] = False


class PartnerUnavailable(ConnectorError):
    """Transport failure, 429 or 5xx: worth retrying."""

    transient = True

    def __init__(
        self, message: str, *, retry_after_s: float | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        """How long the partner asked us to wait (`Retry-After`), if it said."""
        self.reason = reason
        """The class of failure (`timeout`, `transport_error`, `http_429`, `http_5xx`)."""


class PartnerTimeout(PartnerUnavailable, TimeoutError):
    """No complete answer within the fetch's `timeout_s` budget.

    Also a `TimeoutError`, so a caller that budgets time itself with `asyncio.timeout`
    classifies it the same way as its own deadline.
    """


class PartnerRejected(ConnectorError):
    """A 4xx other than 429: our request or credentials are wrong; retrying will not help."""


class MalformedResponse(ConnectorError):
    """The partner answered, but the body does not follow its documented format."""


class ResponseTooLarge(ConnectorError):
    """The partner's answer is larger than the connector's configured limits allow."""

    @classmethod
    def over_bytes(cls, limit: int) -> "ResponseTooLarge":
        return cls(f"response too large (over {limit} bytes)")

    @classmethod
    def over_records(cls, limit: int) -> "ResponseTooLarge":
        return cls(f"response too large (over {limit} records)")


@runtime_checkable
class Connector(Protocol):
    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        """Confirm the partner is reachable and accepts our credentials; fetch no household data."""
        ...

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        """Return canonical records for the household and account for every member asked.

        `Evidence.answered` names each member the partner's answer covers; callers hold it
        to the contract with `fetch_evidence`.
        """
        ...


async def fetch_evidence(
    connector: Connector,
    household: HouseholdQuery,
    config: ConnectorConfig,
    client: httpx.AsyncClient,
) -> Evidence:
    """`connector.fetch`, held to the contract: the one place every answer is checked.

    Every member asked about is accounted for exactly once and every record belongs to one
    of them; otherwise the answer is a `MalformedResponse`, never a "no record". More
    records than `config.max_records` is `ResponseTooLarge`.
    """
    evidence = await connector.fetch(household, config, client)
    if len(evidence.records) > config.max_records:
        raise ResponseTooLarge.over_records(config.max_records)
    account_for_members(household, evidence)
    return evidence


def account_for_members(household: HouseholdQuery, evidence: Evidence) -> None:
    """Raise `MalformedResponse` unless `evidence` covers exactly the members asked about."""
    # "x" and "X" are the same check character; partners may echo either.
    asked = {id_number.upper() for id_number in household.id_numbers}
    answered = Counter(id_number.upper() for id_number in evidence.answered)
    if any(id_number not in asked for id_number in answered) or any(
        record.id_number.upper() not in asked for record in evidence.records
    ):
        # A foreign ID means the partner mixed up households: trust none of the answer.
        raise MalformedResponse("answer for an ID number that was not asked for")
    if any(count > 1 for count in answered.values()):
        raise MalformedResponse("answer covers a member more than once")
    missing = len(asked) - len(answered)
    if missing:
        raise MalformedResponse(f"answer leaves out {missing} of {len(asked)} members asked about")
