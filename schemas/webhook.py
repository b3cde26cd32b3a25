"""Webhooks: subscriptions, the events they receive, and their deliveries."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.identity import FreeText
from schemas.request import RequestModel

EventType = Literal[
    "verification.completed",
    "verification.withdrawn",
    "decision.recorded",
    "warning.raised",
    "batch.completed",
]


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    dead = "dead"
    """Every attempt failed; `POST .../redeliver` tries again."""


class WebhookCreate(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://cases.example.cn/hedui/events",
                    "events": ["warning.raised", "decision.recorded"],
                    "secret": "whsec_8c1f0b6e2d4a4f7e9b3c5a1d",
                }
            ]
        },
    )

    url: FreeText = Field(
        min_length=8,
        max_length=2048,
        description="http(s) URL whose host is in HEDUI_WEBHOOK_HOSTS (no ID number in it)",
    )
    events: list[EventType] = Field(min_length=1, max_length=5)
    secret: str = Field(
        min_length=16,
        max_length=128,
        description="Shared secret for the HMAC-SHA256 signature (`Hedui-Signature`); "
        "never shown again",
    )

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[str]) -> list[str]:
        if len(set(events)) != len(events):
            raise ValueError("an event is listed twice")
        return events


class Webhook(BaseModel):
    id: str
    url: str
    events: list[EventType]
    region_prefix: str = Field(description="Events of this region ('00' = all) are sent")
    active: bool
    created_at: datetime


class WebhookDelivery(BaseModel):
    id: str
    webhook_id: str
    event_id: str = Field(description="Also the `id` of the delivered body: de-duplicate on it")
    event_type: EventType
    status: DeliveryStatus
    attempts: int = Field(
        description="Attempts since it was queued, or since its last redelivery (which "
        "starts a new round of up to HEDUI_WEBHOOK_MAX_ATTEMPTS)"
    )
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt")
    last_status: int | None = Field(
        description="HTTP status of the last attempt (kept through a redelivery until the "
        "next attempt)"
    )
    last_error: str | None = Field(
        default=None, description="Why the last attempt failed (kept through a redelivery)"
    )
    delivered_at: datetime | None = None
    created_at: datetime


class WebhookFilter(RequestModel):
    active: bool | None = Field(
        default=None, description="`true`: those events are sent to; `false`: removed ones"
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of a page")


class WebhookPage(BaseModel):
    items: list[Webhook]
    next_cursor: str | None = None


class DeliveryFilter(RequestModel):
    status: DeliveryStatus | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)


class DeliveryPage(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None = None
