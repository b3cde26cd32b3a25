"""What each route records in the audit trail: its action, the kind of object, and the
path parameter naming the object.

Every route of the app appears here, audited or explicitly not (`None`), so a new route
cannot slip past the trail unnoticed: `tests/unit/test_audit_actions.py` fails for any route
missing from this table. Reads of a household's data are audited as much as changes.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    object_type: str
    object_param: str | None = None
    """The path parameter that names the object; None: the object is created by the
    request, and its id is taken from the `Location` the answer carries."""


V = "verification"
C = "connector"
POLICY_SIMULATE = "policy.simulate"

ACTIONS: dict[tuple[str, str], Action | None] = {
    # Verifications and reports: every create and every read of a household's data.
    ("POST", "/v1/verifications"): Action("verification.create", V),
    ("GET", "/v1/verifications"): Action("verification.list", V),
    ("GET", "/v1/verifications/{verification_id}"): Action(
        "verification.read", V, "verification_id"
    ),
    ("GET", "/v1/verifications/{verification_id}/report"): Action(
        "report.read", V, "verification_id"
    ),
    ("POST", "/v1/verifications/{verification_id}/rescore"): Action(
        "report.rescore", V, "verification_id"
    ),
    ("POST", "/v1/verifications/{verification_id}/decision"): Action(
        "decision.record", V, "verification_id"
    ),
    ("POST", "/v1/verifications/{verification_id}/withdraw"): Action(
        "verification.withdraw", V, "verification_id"
    ),
    ("POST", "/v1/policy/simulate"): Action(POLICY_SIMULATE, "simulation"),
    # Batches: each upload creates verifications; reads list households' outcomes.
    ("POST", "/v1/batches"): Action("batch.create", "batch"),
    ("GET", "/v1/batches"): Action("batch.list", "batch"),
    ("GET", "/v1/batches/{batch_id}"): Action("batch.read", "batch", "batch_id"),
    ("GET", "/v1/batches/{batch_id}/errors"): Action("batch.read_errors", "batch", "batch_id"),
    ("GET", "/v1/batches/{batch_id}/verifications"): Action(
        "batch.list_verifications", "batch", "batch_id"
    ),
    ("POST", "/v1/batches/{batch_id}/households"): Action("batch.append", "batch", "batch_id"),
    ("POST", "/v1/batches/{batch_id}/close"): Action("batch.close", "batch", "batch_id"),
    ("POST", "/v1/batches/{batch_id}/cancel"): Action("batch.cancel", "batch", "batch_id"),
    # The roll of recipients and the warnings re-checks raise: households' data.
    ("GET", "/v1/recipients"): Action("recipient.list", "recipient"),
    ("GET", "/v1/recipients/{recipient_id}"): Action("recipient.read", "recipient", "recipient_id"),
    ("POST", "/v1/recipients/{recipient_id}/stop"): Action(
        "recipient.stop", "recipient", "recipient_id"
    ),
    ("POST", "/v1/recipients/{recipient_id}/consent"): Action(
        "recipient.consent", "recipient", "recipient_id"
    ),
    ("GET", "/v1/warnings"): Action("warning.list", "warning"),
    ("GET", "/v1/warnings/summary"): Action("warning.summary", "warning"),
    ("GET", "/v1/warnings/{warning_id}"): Action("warning.read", "warning", "warning_id"),
    ("POST", "/v1/warnings/{warning_id}/acknowledge"): Action(
        "warning.acknowledge", "warning", "warning_id"
    ),
    ("POST", "/v1/warnings/{warning_id}/resolve"): Action(
        "warning.resolve", "warning", "warning_id"
    ),
    # Webhooks: subscriptions and redeliveries change what leaves hedui.
    ("POST", "/v1/webhooks"): Action("webhook.create", "webhook"),
    ("GET", "/v1/webhooks"): None,
    ("GET", "/v1/webhooks/{webhook_id}"): None,
    ("DELETE", "/v1/webhooks/{webhook_id}"): Action("webhook.remove", "webhook", "webhook_id"),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): None,
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Action(
        "webhook.redeliver", "webhook", "webhook_id"
    ),
    # Near-relative registry.
    ("POST", "/v1/near-relatives"): Action("near_relative.create", "near_relative"),
    ("GET", "/v1/near-relatives"): Action("near_relative.list", "near_relative"),
    ("POST", "/v1/near-relatives/{registration_id}/revoke"): Action(
        "near_relative.revoke", "near_relative", "registration_id"
    ),
    # Looking a person up (the ID number is in the body, never in the trail).
    ("POST", "/v1/people/search"): Action("person.search", V),
    # Connectors: changes are audited; health reads are not (no personal data).
    ("GET", "/v1/connectors/schema"): None,
    ("GET", "/v1/connectors"): None,
    ("POST", "/v1/connectors"): Action("connector.register", C),
    ("GET", "/v1/connectors/{name}"): None,
    ("PUT", "/v1/connectors/{name}"): Action("connector.update", C, "name"),
    ("POST", "/v1/connectors/{name}/test"): Action("connector.test", C, "name"),
    ("POST", "/v1/connectors/{name}/enable"): Action("connector.enable", C, "name"),
    ("POST", "/v1/connectors/{name}/disable"): Action("connector.disable", C, "name"),
    ("GET", "/v1/connectors/{name}/health"): None,
    ("GET", "/v1/connectors/{name}/history"): None,
    ("GET", "/v1/connectors/{name}/events"): None,
    ("POST", "/v1/connectors/{name}/pause"): Action("connector.pause", C, "name"),
    ("POST", "/v1/connectors/{name}/resume"): Action("connector.resume", C, "name"),
    ("POST", "/dashboard/connectors/{name}/pause"): Action("connector.pause", C, "name"),
    ("POST", "/dashboard/connectors/{name}/resume"): Action("connector.resume", C, "name"),
    # The trail itself: reading it is audited too.
    ("GET", "/v1/audit"): Action("audit.read", "audit"),
    ("POST", "/v1/audit/search"): Action("audit.search", "audit"),
    # API keys: who may call hedui (created by `hedui apikey create`, audited there).
    ("GET", "/v1/apikeys"): Action("apikey.list", "api_key"),
    ("POST", "/v1/apikeys/{key_id}/revoke"): Action("apikey.revoke", "api_key", "key_id"),
    # Not about anyone: health, metrics, documentation, the dashboard's own pages.
    ("GET", "/healthz"): None,
    ("GET", "/docs"): None,
    ("GET", "/docs/oauth2-redirect"): None,
    ("GET", "/redoc"): None,
    ("GET", "/metrics"): None,
    ("GET", "/problems/{slug}"): None,
    ("GET", "/dashboard"): None,
    ("POST", "/dashboard/login"): None,
    ("POST", "/dashboard/logout"): None,
    ("GET", "/dashboard/static/dashboard.js"): None,
    ("GET", "/dashboard/data"): None,
}

APIKEY_CREATE = "apikey.create"
APIKEY_REVOKE = "apikey.revoke"
RETENTION_PURGE = "retention.purge"
RECHECK_RUN = "recheck.run"
COMMAND_ACTIONS = frozenset({APIKEY_CREATE, APIKEY_REVOKE, RETENTION_PURGE, RECHECK_RUN})
"""Actions recorded by the command line and by hedui's own passes (the scheduled purge,
the re-check scheduler), not by a route (`policy.simulate` is both)."""

RECORDED = COMMAND_ACTIONS | {action.name for action in ACTIONS.values() if action is not None}
"""Every action the trail may hold: what a filter by action can find."""
