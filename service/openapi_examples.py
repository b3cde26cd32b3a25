"""Examples of what the API answers, for its OpenAPI document (`service.openapi`).

The report example is what hedui's own scorer makes of the documented household under the
shipped policy files, so its figures cannot drift from the rules. Members are shown as
every answer shows them: ID numbers as their first 6 and last 4 characters, names as their
first character. Tests validate every example against its schema.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.apikey import ApiKey
from schemas.assessment import AssessmentInput, HouseholdMember, SourceOutcome
from schemas.batch import Batch
from schemas.evidence import PensionRecord
from schemas.identity import mask_id_number
from schemas.verification import SourceStatus
from service.policy.catalog import PolicyCatalog
from service.report.service import build_report

EXAMPLE_ID = "5b0e3c1a-7f43-4d5e-9a51-2f9c7f1e8d20"
APPLICANT = "530102199001011231"
CHILD = "530102201001011223"
SUBMITTED = datetime(2026, 11, 20, 8, 0, 11, tzinfo=UTC)
FINISHED = datetime(2026, 11, 20, 8, 0, 12, tzinfo=UTC)
SOURCES = ("bank", "housing_fund", "pensions", "public_payroll", "real_estate", "vehicles")


def accepted_example() -> dict[str, Any]:
    return {
        "id": EXAMPLE_ID,
        "reference": "case-2026-000123",
        "status": "queued",
        "created_at": _iso(SUBMITTED),
    }


def verification_example() -> dict[str, Any]:
    """The documented household after its run: every member masked."""
    return {
        "id": EXAMPLE_ID,
        "reference": "case-2026-000123",
        "program": "dibao",
        "region_code": "530102",
        "township_code": None,
        "area": "urban",
        "as_of": "2026-11-20",
        "status": "completed",
        "created_at": _iso(SUBMITTED),
        "completed_at": _iso(FINISHED),
        "support_mode": None,
        "care_grade": None,
        "members": [
            {
                "id_number": mask_id_number(APPLICANT),
                "name": "张*",
                "relation": "applicant",
                "declared_monthly_income": "300.00",
            },
            {
                "id_number": mask_id_number(CHILD),
                "name": "张**",
                "relation": "child",
                "declared_monthly_income": "200.00",
            },
        ],
        "sources": [
            {
                "source": source,
                "status": "ok" if source == "pensions" else "no_record",
                "detail": None,
                "fetched_at": _iso(FINISHED),
                "duration_ms": 38,
                "attempts": 1,
            }
            for source in SOURCES
        ],
        "recommendation": "eligible",
        "decisions": [],
        "withdrawal": None,
    }


def withdrawn_example() -> dict[str, Any]:
    """The documented household after its consent was withdrawn, a week after its report:
    the report stays, the partner records are gone."""
    withdrawn_at = _iso(FINISHED + timedelta(days=7))
    return {
        **verification_example(),
        "status": "withdrawn",
        "withdrawal": {
            "withdrawn_at": withdrawn_at,
            "withdrawn_by": "李娜 (五华区民政局)",
            "withdrawn_by_key_id": "5b0e7c1a-6f2d-4e8b-9a13-2c4d6e8f0a21",
            "reason": "授权已撤回 (consent withdrawn in writing)",
            "status_before": "completed",
        },
    }


def page_example() -> dict[str, Any]:
    return {"items": [verification_example()], "next_cursor": None}


def report_example() -> dict[str, Any]:
    """The documented household scored by hedui itself: pension 300 received by the applicant
    and 200 declared for the child, under Yunnan's urban dibao standard 640:
    (640 − 250) × 2 = 780.00."""
    inputs = AssessmentInput(
        program="dibao",
        area="urban",
        as_of=date(2026, 11, 20),
        members=(
            HouseholdMember(
                id_number=APPLICANT,
                name="张三",
                relation="applicant",
                declared_monthly_income=Decimal(300),
            ),
            HouseholdMember(
                id_number=CHILD,
                name="张小明",
                relation="child",
                declared_monthly_income=Decimal(200),
            ),
        ),
        sources=tuple(
            SourceOutcome(
                source=source,
                status=SourceStatus.ok if source == "pensions" else SourceStatus.no_record,
                records=(
                    (
                        PensionRecord(
                            id_number=APPLICANT, status="receiving", monthly_amount=Decimal(300)
                        ),
                    )
                    if source == "pensions"
                    else ()
                ),
                fetched_at=FINISHED,
            )
            for source in SOURCES
        ),
    )
    policy = PolicyCatalog.load().resolve("530102", "dibao", "urban", inputs.as_of)
    if policy is None:
        raise RuntimeError("the shipped policy files no longer cover the documented example")
    report = build_report(EXAMPLE_ID, "530102", inputs, policy, generated_at=FINISHED).report
    return report.model_dump(mode="json")


RECIPIENT_ID = "0c6f2d8e-52b1-4f0a-8d59-7a4e1c3b9f10"


def recipient_example() -> dict[str, Any]:
    """The documented household on the roll, approved on 2026-11-21."""
    return {
        "id": RECIPIENT_ID,
        "reference": "case-2026-000123",
        "program": "dibao",
        "area": "urban",
        "region_code": "530102",
        "township_code": None,
        "status": "active",
        "recheck_class": "other",
        "monthly_benefit": "780.00",
        "origin_verification_id": EXAMPLE_ID,
        "approved_verification_id": EXAMPLE_ID,
        "approved_on": "2026-11-21",
        "next_recheck_on": "2027-05-21",
        "consent": {
            "document_id": "AUTH-0001",
            "signed_on": "2026-11-20",
            "expires_on": None,
            "withdrawn_on": None,
        },
        "needs_new_consent": False,
        "members": verification_example()["members"],
        "left_on": None,
        "left_reason": None,
        "created_at": _iso(FINISHED + timedelta(days=1)),
    }


def recipient_page_example() -> dict[str, Any]:
    return {"items": [recipient_example()], "next_cursor": None}


WARNING_ID = "7d3a9c52-1e84-4b6f-a0d2-5c9e8f714b33"
RECHECK_ID = "e41b7f09-8c2d-4a35-b6e1-93f0d2a7c5e8"


def warning_example() -> dict[str, Any]:
    """A year on, the son of the documented household owns a car."""
    child = mask_id_number(CHILD)
    return {
        "id": WARNING_ID,
        "code": "new_vehicle",
        "severity": "high",
        "status": "open",
        "recipient_id": RECIPIENT_ID,
        "region_code": "530102",
        "township_code": None,
        "source": "vehicles",
        "member": child,
        "before": [],
        "after": [
            {
                "source": "vehicles",
                "member": child,
                "fact": "vehicle plate=云A8K123 type=car registered_on=2027-03-01 value=85000.00",
            }
        ],
        "proposed_action": "stop",
        "benefit_before": "780.00",
        "benefit_after": None,
        "changes_eligibility": True,
        "verification_id": RECHECK_ID,
        "previous_verification_id": EXAMPLE_ID,
        "review_verification_id": RECHECK_ID,
        "note": None,
        "acknowledged_note": None,
        "resolved_note": None,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "acknowledged_by_key_id": None,
        "resolved_at": None,
        "resolved_by": None,
        "resolved_by_key_id": None,
        "created_at": _iso(FINISHED + timedelta(days=366)),
    }


def warning_page_example() -> dict[str, Any]:
    return {"items": [warning_example()], "next_cursor": None}


def webhook_example() -> dict[str, Any]:
    return {
        "id": "3f6b2a10-9d4e-4c7b-8e21-0a5d6c9b7f42",
        "url": "https://cases.example.cn/hedui/events",
        "events": ["warning.raised", "decision.recorded"],
        "region_prefix": "5301",
        "active": True,
        "created_at": _iso(SUBMITTED),
    }


RESPONSE_EXAMPLES: dict[tuple[str, str, str], Callable[[], Any]] = {
    ("/v1/verifications", "post", "202"): accepted_example,
    ("/v1/verifications", "post", "200"): verification_example,
    ("/v1/verifications", "get", "200"): page_example,
    ("/v1/verifications/{verification_id}", "get", "200"): verification_example,
    ("/v1/verifications/{verification_id}/report", "get", "200"): report_example,
    ("/v1/verifications/{verification_id}/withdraw", "post", "200"): withdrawn_example,
    ("/v1/recipients", "get", "200"): recipient_page_example,
    ("/v1/recipients/{recipient_id}", "get", "200"): recipient_example,
    ("/v1/warnings", "get", "200"): warning_page_example,
    ("/v1/warnings/{warning_id}", "get", "200"): warning_example,
    ("/v1/webhooks", "post", "201"): webhook_example,
}
"""(path, method, status) → its example, as `application/json` of that response."""


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


PATH_EXAMPLES = {
    "verification_id": EXAMPLE_ID,
    "recipient_id": RECIPIENT_ID,
    "warning_id": WARNING_ID,
    "batch_id": "5f0c1a2e-8d7b-4c1e-9a53-0b6f1e2d3c4a",
    "webhook_id": "3f6b2a10-9d4e-4c7b-8e21-0a5d6c9b7f42",
    "delivery_id": "8e1d4c7a-2b5f-4a9e-b3c6-7d0f1a2e5b94",
    "registration_id": "2b7e4f1c-93a0-4d6e-8c15-6f0a9d3e7b42",
    "key_id": "0b6a2f6e-3f7e-4c1b-9d7a-5f0c8a1e2d34",
    "name": "city_pensions",
    "slug": "decision-exists",
}
"""A value for each path parameter, as the problem examples' `instance` shows it."""

APPROVER_KEY = "7c2e9b14-5a3f-4d8e-b1c6-0f9a2d4e6b83"
DECIDED = FINISHED + timedelta(days=1)


def decision_example() -> dict[str, Any]:
    return {
        "id": "c3a8e5f1-0d2b-4e7a-9f46-1b8d3c5e7a02",
        "verification_id": EXAMPLE_ID,
        "decision": "approve",
        "reason": "收入低于标准，核对无异常 (income below the standard, nothing found)",
        "decided_by": "李娜 (五华区民政局)",
        "decided_by_key_id": APPROVER_KEY,
        "decided_at": _iso(DECIDED),
        "report_hash": "sha256:9f2c4e1a7b3d5f608e1c2a4b6d8f0e2c4a6b8d0f2e4c6a8b0d2f4e6a8c0b2d4f",
        "policy_version": "53/dibao/urban@2020-06-01",
        "monthly_benefit": "780.00",
        "one_off_amount": None,
        "recipient_id": None,
    }


def rescore_example() -> dict[str, Any]:
    report = report_example()
    return {
        "report": report,
        "original_report_hash": report["report_hash"],
        "identical": True,
        "changes": [],
    }


def stopped_recipient_example() -> dict[str, Any]:
    return {
        **recipient_example(),
        "status": "left",
        "next_recheck_on": None,
        "left_on": "2027-12-01",
        "left_reason": "moved out of the county",
    }


def renewed_recipient_example() -> dict[str, Any]:
    recipient = recipient_example()
    return {
        **recipient,
        "consent": {
            **recipient["consent"],
            "document_id": "AUTH-0200-2",
            "signed_on": "2026-11-28",
        },
    }


def warning_summary_example() -> dict[str, Any]:
    return {
        "regions": [
            {"region_code": "530102", "open": 4, "acknowledged": 2, "resolved": 31, "high": 3},
            {"region_code": "530103", "open": 1, "acknowledged": 0, "resolved": 12, "high": 0},
        ]
    }


def acknowledged_warning_example() -> dict[str, Any]:
    return {
        **warning_example(),
        "status": "acknowledged",
        "acknowledged_note": "visited; the car is a relative's",
        "acknowledged_at": _iso(FINISHED + timedelta(days=368)),
        "acknowledged_by": "王芳 (五华区民政局)",
        "acknowledged_by_key_id": "0b6a2f6e-3f7e-4c1b-9d7a-5f0c8a1e2d34",
    }


def resolved_warning_example() -> dict[str, Any]:
    return {
        **acknowledged_warning_example(),
        "status": "resolved",
        "resolved_note": "re-check approved: the car is registered to the son's employer",
        "resolved_at": _iso(FINISHED + timedelta(days=372)),
        "resolved_by": "李娜 (五华区民政局)",
        "resolved_by_key_id": APPROVER_KEY,
    }


def webhook_page_example() -> dict[str, Any]:
    return {"items": [webhook_example()], "next_cursor": None}


def delivery_example() -> dict[str, Any]:
    return {
        "id": PATH_EXAMPLES["delivery_id"],
        "webhook_id": PATH_EXAMPLES["webhook_id"],
        "event_id": "f0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
        "event_type": "warning.raised",
        "status": "dead",
        "attempts": 8,
        "next_attempt_at": None,
        "last_status": 503,
        "last_error": "HTTP 503 from the receiver",
        "delivered_at": None,
        "created_at": _iso(FINISHED + timedelta(days=366)),
    }


def delivery_page_example() -> dict[str, Any]:
    return {"items": [delivery_example()], "next_cursor": None}


def redelivery_example() -> dict[str, Any]:
    return {
        **delivery_example(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": _iso(FINISHED + timedelta(days=367)),
    }


def near_relative_example() -> dict[str, Any]:
    return {
        "id": PATH_EXAMPLES["registration_id"],
        "region_code": "530102",
        "staff_name": "李*",
        "staff_position": "五华区民政局 低保审核岗",
        "relative_id_number": "110105********002X",
        "relative_name": "张*",
        "relationship": "sibling",
        "registered_by": "陈静 (五华区纪检监察组)",
        "registered_by_key_id": "4d9a1c6e-7b2f-4e3a-8c5d-2f1e0a9b8c7d",
        "registered_at": _iso(SUBMITTED - timedelta(days=30)),
        "revoked_at": None,
        "revoked_by": None,
        "revoked_by_key_id": None,
        "revoked_reason": None,
    }


def revoked_near_relative_example() -> dict[str, Any]:
    return {
        **near_relative_example(),
        "revoked_at": _iso(SUBMITTED + timedelta(days=60)),
        "revoked_by": "陈静 (五华区纪检监察组)",
        "revoked_by_key_id": "4d9a1c6e-7b2f-4e3a-8c5d-2f1e0a9b8c7d",
        "revoked_reason": "任职结束",
    }


def near_relative_page_example() -> dict[str, Any]:
    return {"items": [near_relative_example()], "next_cursor": None}


def simulation_example() -> dict[str, Any]:
    return {
        "verifications": 1240,
        "changed": 37,
        "newly_eligible": 21,
        "no_longer_eligible": 0,
        "monthly_benefit_before": "512340.00",
        "monthly_benefit_after": "581020.00",
        "monthly_benefit_delta": "68680.00",
        "truncated": False,
        "rows": [
            {
                "verification_id": EXAMPLE_ID,
                "reference": "case-2026-000123",
                "before": "eligible",
                "after": "eligible",
                "benefit_before": "780.00",
                "benefit_after": "900.00",
            }
        ],
    }


BATCH_ID = PATH_EXAMPLES["batch_id"]


def batch_errors_example() -> dict[str, Any]:
    return {
        "items": [
            {
                "line": 17,
                "status": 422,
                "title": "Invalid request",
                "detail": "members.0.id_number: the check digit does not match (GB 11643)",
                "errors": [
                    {
                        "loc": ["body", "members", 0, "id_number"],
                        "msg": "the check digit does not match (GB 11643)",
                        "pointer": None,
                    }
                ],
            }
        ],
        "next_cursor": None,
    }


def batch_verifications_example() -> dict[str, Any]:
    return {
        "items": [
            {
                "line": 1,
                "id": EXAMPLE_ID,
                "reference": "recheck-1",
                "status": "completed",
                "recommendation": "eligible",
            },
            {
                "line": 2,
                "id": "6c1f4d2b-8e3a-4b7c-9d05-3a6e8f2b1c47",
                "reference": "recheck-2",
                "status": "running",
                "recommendation": None,
            },
        ],
        "next_cursor": None,
    }


PAUSE = {
    "paused_by": "王芳 (省厅运维)",
    "reason": "partner maintenance 02:00-04:00",
    "paused_at": "2026-12-04T18:00:00Z",
}


def connector_summary_example(*, paused: bool = False) -> dict[str, Any]:
    return {
        "name": "bank",
        "title": "银行存款查询 (bank deposits)",
        "version": "1.4.0",
        "origin": "builtin",
        "enabled": True,
        "kinds": ["bank_accounts"],
        "health": "operational",
        "breaker": "closed",
        "paused": PAUSE if paused else None,
    }


def connectors_example() -> list[dict[str, Any]]:
    return [
        connector_summary_example(),
        {
            **connector_summary_example(),
            "name": "city_pensions",
            "title": "市社保局养老金 (city pensions)",
            "version": "2",
            "origin": "declarative",
            "kinds": ["pensions"],
            "health": "degraded",
        },
    ]


SPEC_EXAMPLE: dict[str, Any] = {
    "name": "city_pensions",
    "title": "市社保局养老金 (city pensions)",
    "kind": "pensions",
    "request": {"method": "POST", "url": "https://pensions.partner.example.cn/api/query"},
}


def registered_connector_example(*, enabled: bool = True) -> dict[str, Any]:
    return {
        "name": "city_pensions",
        "title": "市社保局养老金 (city pensions)",
        "origin": "declarative",
        "enabled": enabled,
        "active_version": 2 if enabled else None,
        "latest_version": 2,
        "versions": [
            {"version": 1, "tested_ok": True, "created_at": "2026-11-02T03:00:00Z"},
            {"version": 2, "tested_ok": True, "created_at": "2026-11-30T03:00:00Z"},
        ],
        "spec": SPEC_EXAMPLE,
        "updated_at": "2026-11-30T03:05:00Z",
    }


def new_connector_example() -> dict[str, Any]:
    return {
        **registered_connector_example(enabled=False),
        "latest_version": 1,
        "versions": [{"version": 1, "tested_ok": False, "created_at": "2026-11-02T03:00:00Z"}],
        "updated_at": "2026-11-02T03:00:00Z",
    }


def connector_test_example() -> dict[str, Any]:
    return {
        "name": "city_pensions",
        "version": 2,
        "ok": True,
        "elapsed_ms": 182.4,
        "records": [
            {
                "id_number": mask_id_number(APPLICANT),
                "status": "receiving",
                "monthly_amount": "300.00",
            }
        ],
        "answered": 1,
        "exchanges": [
            {
                "method": "POST",
                "url": "https://pensions.partner.example.cn/api/query",
                "request_headers": {"Content-Type": "application/json", "Authorization": "***"},
                "request_body": '{"idno": "530102********1231", "consent": "AUTH-0001"}',
                "status": 200,
                "response_body": '{"code": 0, "data": [{"idno": "530102********1231", '
                '"state": "receiving", "amount": 300}]}',
                "duration_ms": 176.9,
            }
        ],
        "error": None,
    }


def connector_health_example() -> dict[str, Any]:
    return {
        "name": "bank",
        "status": "operational",
        "reason": "success rate 99.2% and p95 840 ms over the last 5 minutes",
        "window_s": 300,
        "window_from": "2026-12-04T09:55:00Z",
        "window_restarted": False,
        "calls": 1250,
        "failures": 10,
        "refused": 0,
        "success_rate": 0.992,
        "latency": {"p50_ms": 310.0, "p95_ms": 840.0, "p99_ms": 1900.0},
        "slo_p95_ms": 2000.0,
        "breaker": "closed",
        "breaker_until": None,
        "paused": None,
        "last_success_at": "2026-12-04T09:59:58Z",
        "last_error": {
            "at": "2026-12-04T09:41:07Z",
            "outcome": "timeout",
            "detail": "no answer within 5 s",
        },
        "last_probe": {
            "at": "2026-12-04T09:59:30Z",
            "ok": True,
            "latency_ms": 120.0,
            "detail": None,
        },
        "recent_errors": [
            {"at": "2026-12-04T09:41:07Z", "outcome": "timeout", "detail": "no answer within 5 s"}
        ],
    }


def connector_history_example() -> dict[str, Any]:
    point = {
        "start": "2026-12-04T09:55:00Z",
        "calls": 210,
        "failures": 2,
        "refused": 0,
        "error_rate": 0.0095,
        "p95_ms": 820.0,
    }
    return {
        "name": "bank",
        "bucket_s": 300,
        "hour": [point],
        "day": [{**point, "start": "2026-12-04T09:00:00Z", "calls": 2480, "failures": 19}],
    }


def connector_events_example() -> dict[str, Any]:
    return {
        "items": [
            {
                "at": "2026-12-04T20:01:00Z",
                "connector": "bank",
                "action": "resume",
                "actor": "王芳 (省厅运维)",
                "reason": "maintenance over",
            },
            {
                "at": "2026-12-04T18:00:00Z",
                "connector": "bank",
                "action": "pause",
                "actor": "王芳 (省厅运维)",
                "reason": "partner maintenance 02:00-04:00",
            },
        ],
        "next_cursor": None,
    }


def audit_page_example() -> dict[str, Any]:
    return {
        "items": [
            {
                "id": 1043,
                "at": "2026-12-04T09:31:40.512031Z",
                "actor_key_id": APPROVER_KEY,
                "actor_name": "李娜 (五华区民政局)",
                "role": "approver",
                "region": "530102",
                "action": "report.read",
                "object_type": "verification",
                "object_id": EXAMPLE_ID,
                "object_region": "530102",
                "request_id": "8a1c2e3f4b5d6e7f8091a2b3c4d5e6f7",
                "outcome": "ok",
                "detail": None,
            }
        ],
        "next_cursor": None,
    }


def apikey_page_example() -> dict[str, Any]:
    examples: list[dict[str, Any]] = ApiKey.model_config["json_schema_extra"]["examples"]  # type: ignore[index,assignment]
    return {"items": examples, "next_cursor": None}


def batch_page_example() -> dict[str, Any]:
    examples: list[dict[str, Any]] = Batch.model_config["json_schema_extra"]["examples"]  # type: ignore[index,assignment]
    return {"items": examples, "next_cursor": None}


RESPONSE_EXAMPLES.update(
    {
        ("/v1/batches", "get", "200"): batch_page_example,
        ("/v1/batches/{batch_id}/errors", "get", "200"): batch_errors_example,
        ("/v1/batches/{batch_id}/verifications", "get", "200"): batch_verifications_example,
        ("/v1/verifications/{verification_id}/rescore", "post", "200"): rescore_example,
        ("/v1/verifications/{verification_id}/decision", "post", "201"): decision_example,
        ("/v1/recipients/{recipient_id}/stop", "post", "200"): stopped_recipient_example,
        ("/v1/recipients/{recipient_id}/consent", "post", "200"): renewed_recipient_example,
        ("/v1/warnings/summary", "get", "200"): warning_summary_example,
        ("/v1/warnings/{warning_id}/acknowledge", "post", "200"): acknowledged_warning_example,
        ("/v1/warnings/{warning_id}/resolve", "post", "200"): resolved_warning_example,
        ("/v1/webhooks", "get", "200"): webhook_page_example,
        ("/v1/webhooks/{webhook_id}", "get", "200"): webhook_example,
        ("/v1/webhooks/{webhook_id}/deliveries", "get", "200"): delivery_page_example,
        (
            "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            "post",
            "202",
        ): redelivery_example,
        ("/v1/near-relatives", "post", "201"): near_relative_example,
        ("/v1/near-relatives", "get", "200"): near_relative_page_example,
        (
            "/v1/near-relatives/{registration_id}/revoke",
            "post",
            "200",
        ): revoked_near_relative_example,
        ("/v1/people/search", "post", "200"): page_example,
        ("/v1/policy/simulate", "post", "200"): simulation_example,
        ("/v1/connectors/schema", "get", "200"): lambda: {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "ConnectorSpec",
            "type": "object",
        },
        ("/v1/connectors", "get", "200"): connectors_example,
        ("/v1/connectors", "post", "201"): new_connector_example,
        ("/v1/connectors/{name}", "get", "200"): registered_connector_example,
        ("/v1/connectors/{name}", "put", "200"): registered_connector_example,
        ("/v1/connectors/{name}/test", "post", "200"): connector_test_example,
        ("/v1/connectors/{name}/enable", "post", "200"): registered_connector_example,
        ("/v1/connectors/{name}/disable", "post", "200"): lambda: registered_connector_example(
            enabled=False
        ),
        ("/v1/connectors/{name}/health", "get", "200"): connector_health_example,
        ("/v1/connectors/{name}/history", "get", "200"): connector_history_example,
        ("/v1/connectors/{name}/events", "get", "200"): connector_events_example,
        ("/v1/connectors/{name}/pause", "post", "200"): lambda: connector_summary_example(
            paused=True
        ),
        ("/v1/connectors/{name}/resume", "post", "200"): connector_summary_example,
        ("/v1/audit", "get", "200"): audit_page_example,
        ("/v1/audit/search", "post", "200"): audit_page_example,
        ("/v1/apikeys", "get", "200"): apikey_page_example,
    }
)
