"""Every route says what the audit trail records of it (or that it records nothing)."""

from datetime import UTC, datetime, timedelta

from fastapi.routing import APIRoute

from service.app import ROUTERS, create_app
from service.audit.actions import ACTIONS
from service.audit.chain import FIELDS, GENESIS, canonical, link_hash
from service.config import Settings


def _routes() -> set[tuple[str, str]]:
    app = create_app(Settings(sandbox="off", partner_base_url="http://127.0.0.1:9"))
    found: set[tuple[str, str]] = set()
    candidates = [route for router in ROUTERS for route in router.routes] + list(app.router.routes)
    for route in candidates:
        if isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods}
    return found


def test_every_route_is_in_the_audit_table() -> None:
    missing = sorted(_routes() - ACTIONS.keys())
    assert not missing, (
        "add these routes to service/audit/actions.py (an Action, or None when the route "
        f"touches nobody's data): {missing}"
    )


def test_household_reads_and_changes_are_audited() -> None:
    for route in (
        ("GET", "/v1/verifications/{verification_id}"),
        ("GET", "/v1/verifications/{verification_id}/report"),
        ("POST", "/v1/verifications/{verification_id}/decision"),
        ("POST", "/v1/verifications"),
    ):
        assert ACTIONS[route] is not None, route


AT = datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC)


class _Event:
    id = 7
    at = AT
    actor_key_id = "k"
    actor_name = "王芳"
    role = "caseworker"
    region = "5301"
    action = "report.read"
    object_type = "verification"
    object_id = "v"
    object_region = "530102"
    request_id = "r"
    outcome = "ok"
    detail = None


OTHER: dict[str, object] = {"id": 8, "at": AT + timedelta(microseconds=1)}


def test_every_field_is_covered_by_the_hash() -> None:
    base = link_hash(GENESIS, _Event())
    for field in FIELDS:
        changed = type("Changed", (_Event,), {field: OTHER.get(field, "other")})
        assert link_hash(GENESIS, changed()) != base, field
    assert link_hash("1" * 64, _Event()) != base
    assert b'"at":"2026-12-04T01:02:03.456789Z"' in canonical(_Event())
