"""Connectors and their health as operators and integrators see them (API v1)."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.identity import FreeText
from schemas.request import RequestModel


class HealthStatus(StrEnum):
    """Statuspage's words for a connector's state."""

    unknown = "unknown"
    operational = "operational"
    degraded = "degraded"
    down = "down"


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CallOutcome(StrEnum):
    """How one fetch of one source ended, as counted for health and metrics."""

    ok = "ok"
    no_record = "no_record"
    unavailable = "unavailable"
    """Transport error, 5xx or 429 after retries: the partner's fault, counted by the breaker."""
    timeout = "timeout"
    """No answer within the source's budget: the partner's fault, counted by the breaker."""
    malformed = "malformed"
    """The partner answered garbage: its fault, but fast; counted in health, not by the breaker."""
    rejected = "rejected"
    """A 4xx other than 429: our request or credentials are wrong."""
    error = "error"
    """The connector itself failed (a bug); logged with its exception type."""
    circuit_open = "circuit_open"
    """Refused without calling the partner: its breaker is open."""
    paused = "paused"
    """Refused without calling the partner: an operator paused it."""


class LatencySummary(BaseModel):
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class Pause(BaseModel):
    paused_by: str = Field(description="Name of the key that paused the connector")
    reason: str
    paused_at: datetime


class ConnectorSummary(BaseModel):
    """One connector in `GET /v1/connectors`."""

    name: str
    title: str
    version: str
    origin: str = Field(description="builtin | plugin | declarative")
    enabled: bool = Field(
        default=True,
        description="Whether new verifications ask it (a declarative connector registered "
        "but not yet enabled, or disabled, is listed with false)",
    )
    kinds: list[str] = Field(
        default_factory=list, description="Canonical record kinds it yields (vehicle, pension…)"
    )
    health: HealthStatus
    breaker: BreakerState
    paused: Pause | None = None


class CodeConnector(BaseModel):
    """`GET /v1/connectors/{name}` for a built-in or plugin connector: its config in force."""

    name: str
    title: str
    version: str
    origin: str = Field(description="builtin | plugin")
    enabled: bool = True
    kinds: list[str] = Field(default_factory=list)
    package: str | None = Field(
        default=None, description="The installed distribution that provides it (plugins)"
    )
    config: dict[str, Any] = Field(
        description="Its settings in this process (defaults, `HEDUI_CONNECTORS` overrides); "
        "secret values appear as ***"
    )
    config_schema: dict[str, Any] = Field(description="JSON Schema of its settings")
    paused: Pause | None = Field(
        default=None, description="An operator's pause (who, why, since when), if any"
    )


class RecentError(BaseModel):
    at: datetime
    outcome: CallOutcome
    detail: str | None = Field(description="Masked: never a full ID number, name or balance")


class Probe(BaseModel):
    at: datetime
    ok: bool
    latency_ms: float | None = None
    detail: str | None = None


class SeriesPoint(BaseModel):
    """One time bucket of a connector's calls (all processes together)."""

    start: datetime
    calls: int
    failures: int
    refused: int
    error_rate: float | None = Field(description="failures / calls; null without calls")
    p95_ms: float | None = None


class ConnectorHealth(BaseModel):
    """`GET /v1/connectors/{name}/health`: the health model over the recent window."""

    name: str
    status: HealthStatus
    reason: str = Field(description="Why the status is what it is, in a few words")
    window_s: int
    window_from: datetime = Field(
        description="Where the figures below start: `window_s` ago, or later when the breaker "
        "closed since (the window restarts then: the outage's failures no longer count)"
    )
    window_restarted: bool = Field(
        default=False,
        description="Whether `window_from` is when the breaker closed (the window is shorter "
        "than `window_s`)",
    )
    calls: int = Field(description="Fetches that reached the partner within the window")
    failures: int = Field(description="Partner-attributable failures within the window")
    refused: int = Field(description="Fetches refused by the breaker or a pause")
    success_rate: float | None
    latency: LatencySummary
    slo_p95_ms: float
    breaker: BreakerState
    breaker_until: datetime | None = Field(description="When an open breaker lets probes in")
    paused: Pause | None = None
    last_success_at: datetime | None = None
    last_error: RecentError | None = None
    last_probe: Probe | None = None
    recent_errors: list[RecentError] = Field(default_factory=list)


class ConnectorHistory(BaseModel):
    """Time series for the dashboard's charts."""

    name: str
    bucket_s: int
    hour: list[SeriesPoint]
    day: list[SeriesPoint]


class PauseRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "partner maintenance 02:00-04:00"}]}
    )

    reason: FreeText = Field(
        min_length=1,
        max_length=500,
        description="Why; kept in the record",
        examples=["partner maintenance 02:00-04:00"],
    )


class ResumeRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "maintenance over"}]})

    reason: FreeText = Field(
        default="",
        max_length=500,
        description="Why; kept in the record",
        examples=["maintenance over"],
    )


EventAction = Literal["pause", "resume", "breaker_closed", "breaker_open", "breaker_half_open"]


class ConnectorEvent(BaseModel):
    """An operator action or breaker transition, with who did it and why."""

    at: datetime
    connector: str
    action: EventAction
    actor: str | None
    reason: str | None


class ConnectorEventFilter(RequestModel):
    action: EventAction | None = Field(default=None, description="Only events of this action")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


class ConnectorEventPage(BaseModel):
    items: list[ConnectorEvent]
    next_cursor: str | None = Field(
        default=None, description="Pass back as `cursor` for the next, older page"
    )
