"""ORM models. Wire models live in `schemas/`, never here."""

from service.models.api_key import ApiKey
from service.models.audit import AuditChainLink, AuditCheckpoint, AuditEvent
from service.models.base import Base
from service.models.batch import Batch, BatchLineError
from service.models.connector import (
    ConnectorBucket,
    ConnectorEvent,
    ConnectorState,
    DashboardSession,
)
from service.models.data_key import DataKey, KeyRotation
from service.models.declarative_connector import StoredConnector, StoredConnectorVersion
from service.models.near_relative import NearRelative
from service.models.recipient import Recheck, Recipient
from service.models.report import Decision, Report
from service.models.verification import IdempotencyKey, Member, SourceResult, Verification
from service.models.warning import ChangeWarning
from service.models.webhook import OutboxEvent, Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "AuditChainLink",
    "AuditCheckpoint",
    "AuditEvent",
    "Base",
    "Batch",
    "BatchLineError",
    "ChangeWarning",
    "ConnectorBucket",
    "ConnectorEvent",
    "ConnectorState",
    "DashboardSession",
    "DataKey",
    "Decision",
    "IdempotencyKey",
    "KeyRotation",
    "Member",
    "NearRelative",
    "OutboxEvent",
    "Recheck",
    "Recipient",
    "Report",
    "SourceResult",
    "StoredConnector",
    "StoredConnectorVersion",
    "Verification",
    "Webhook",
    "WebhookDelivery",
]
