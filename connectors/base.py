"""The contract every connector fulfils, and the errors it may raise.

Shaped after airbyte's source contract: a connector declares a pydantic `Config` (its
spec), confirms reachability with `check`, and `fetch`es canonical records for a whole
household. It receives the process-wide `httpx.AsyncClient`; it never creates one.
"""

from collections import Counter
from typing import ClassVar, Protocol, TypeGuard, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.evidence import Evidence, HouseholdQuery
from schemas.identity import contains_id_number


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
        description="Most requests to this partner in flight at once, in total over every "
        "hedui process sharing the database (the partner's agreed concurrency); also each "
        "process's bulkhead of fetches. A call that finds no free slot within its budget "
        "is a timeout",
    )
    rate_per_s: float | None = Field(
        default=None,
        gt=0,
        le=10_000,
        description="Most requests to this partner per second, in total over every hedui "
        "process sharing the database (the partner's agreed rate); calls beyond it wait "
        "their turn within their budget. None: no agreed rate",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Caught here, at startup, rather than as an obscure error on the first request.
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")


class ParkingConfig(ConnectorConfig):
    """Settings of a connector whose partner may answer later (`ParkingConnector`)."""

    park_after_s: float | None = Field(
        default=2.0,
        ge=0,
        description="How long a run waits for the partner's answer (at most half of "
        "timeout_s) before it parks the source and frees its slot; the answer is then "
        "collected later. null: never park, wait within timeout_s as any other source",
    )
    collect_interval_s: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="Wait before the first collect of a parked source; it doubles after "
        "every collect that finds no answer yet",
    )
    collect_max_interval_s: float = Field(
        default=900.0, gt=0, le=86_400, description="Longest wait between two collects"
    )
    collect_deadline_s: float = Field(
        default=86_400.0,
        gt=0,
        le=90 * 86_400,
        description="The partner's own deadline: a parked source still unanswered this long "
        "after it was parked is settled as timeout (the report is then review)",
    )


class Parked(BaseModel):
    """The partner accepted the question and will answer later: collect it with `token`.

    The token is the partner's opaque reference for the question (a bank's inquiry id). It
    is stored with the source and sent back to the partner, so it must never carry
    personal data; one that looks like an ID number is refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str = Field(pattern=r"^[A-Za-z0-9._:~-]{1,128}$")
    collect_after_s: float = Field(
        gt=0, le=86_400, description="When the partner suggests asking again"
    )

    @field_validator("token")
    @classmethod
    def _no_personal_data(cls, token: str) -> str:
        if contains_id_number(token):
            raise ValueError("a parked token must not carry an ID number")
        return token


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


class PartnerReportedError(MalformedResponse):
    """The partner answered in its format, saying it failed (a business error code): no
    records, and no retry. Told apart from a garbled answer only in what it is called."""


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


@runtime_checkable
class ParkingConnector(Connector, Protocol):
    """A connector whose partner may answer "accepted, collect later" (submit, then poll).

    `fetch` still returns the whole answer within `timeout_s` (so the connector works
    wherever a plain one does); the service calls `submit` instead when the connector's
    config is a `ParkingConfig` with `park_after_s` set, stores a `Parked` token, frees the
    run and calls `collect` later, until the answer comes or the partner's deadline passes.
    A plugin opts in by implementing both methods and taking a `ParkingConfig` subclass.
    """

    async def submit(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence | Parked:
        """Ask the partner; the answer if it comes within `park_after_s`, else `Parked`."""
        ...

    async def collect(
        self,
        token: str,
        household: HouseholdQuery,
        config: ConnectorConfig,
        client: httpx.AsyncClient,
    ) -> Evidence | Parked:
        """Ask once for the answer to a parked question: the answer, or `Parked` again."""
        ...


def parks(connector: Connector, config: ConnectorConfig) -> TypeGuard[ParkingConnector]:
    """Whether the service submits to this connector and collects its answer later."""
    return (
        isinstance(config, ParkingConfig)
        and config.park_after_s is not None
        and is_parking(connector)
    )


_parking: dict[type, bool] = {}


def is_parking(connector: Connector) -> TypeGuard[ParkingConnector]:
    """`isinstance(connector, ParkingConnector)`, answered once per class: a runtime
    protocol check looks up each of the protocol's eight members on the object (some
    10 µs, for every source of every household), and what makes a connector a parking
    one, its `submit` and `collect`, are methods of its class."""
    cls = type(connector)
    known = _parking.get(cls)
    if known is None:
        known = _parking[cls] = isinstance(connector, ParkingConnector)
    return known


async def submit_evidence(
    connector: ParkingConnector,
    household: HouseholdQuery,
    config: ConnectorConfig,
    client: httpx.AsyncClient,
) -> Evidence | Parked:
    """`connector.submit`, an answer held to the contract as `fetch_evidence` holds it."""
    answer = await connector.submit(household, config, client)
    return answer if isinstance(answer, Parked) else held_to_contract(household, config, answer)


async def collect_evidence(
    connector: ParkingConnector,
    token: str,
    household: HouseholdQuery,
    config: ConnectorConfig,
    client: httpx.AsyncClient,
) -> Evidence | Parked:
    """`connector.collect`, an answer held to the contract as `fetch_evidence` holds it."""
    answer = await connector.collect(token, household, config, client)
    return answer if isinstance(answer, Parked) else held_to_contract(household, config, answer)


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
    return held_to_contract(household, config, await connector.fetch(household, config, client))


def held_to_contract(
    household: HouseholdQuery, config: ConnectorConfig, evidence: Evidence
) -> Evidence:
    """`evidence`, once it is within `max_records` and accounts for every member asked."""
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
