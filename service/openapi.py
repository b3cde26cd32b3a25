"""The OpenAPI document: response examples, and the link to the sandbox's own document.

Examples are added when the document is first built (not at import): the report example is
what hedui's own scorer makes of the documented household under the shipped policy files,
so its figures cannot drift from the rules. Tests validate every example against the
response model of its operation.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI

from schemas.assessment import AssessmentInput, HouseholdMember, SourceOutcome
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

SANDBOX_DOCS = """

**Sandbox agencies.** This server also runs the fake partner agencies under `/sandbox`
(seed people, inject faults, and each agency's own wire format). They have their own API
document: [/sandbox/docs](/sandbox/docs) (`/sandbox/openapi.json`).
"""


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


RESPONSE_EXAMPLES: dict[tuple[str, str, str], Callable[[], dict[str, Any]]] = {
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


UNSUPPORTED_MEDIA_TYPE: dict[str, Any] = {
    "description": "The body was not sent as JSON (Content-Type: application/json)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def install_openapi(app: FastAPI, *, sandbox_mounted: bool) -> None:
    """Build the document once, with response examples and (when mounted) the sandbox link."""
    if sandbox_mounted:
        app.description += SANDBOX_DOCS
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for (path, method, status), example in RESPONSE_EXAMPLES.items():
            response = schema["paths"][path][method]["responses"][status]
            response.setdefault("content", {}).setdefault("application/json", {})
            response["content"]["application/json"]["example"] = example()
        for operations in schema["paths"].values():
            for operation in operations.values():
                # A JSON body sent as something else is 415 (`service.error_handlers.not_json`).
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    operation["responses"].setdefault("415", UNSUPPORTED_MEDIA_TYPE)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
