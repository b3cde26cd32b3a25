"""`/dashboard`: the operators' page, server-rendered, refreshed by a small script.

People sign in with an operator or admin key through a form; the key is checked once and
a random session token (stored hashed, expiring) goes into a Secure, HttpOnly, SameSite
cookie. Scripts send the key as a bearer token instead. Actions from the page (pause,
resume) are JSON POSTs, which a cross-site form cannot send.
"""

import ipaddress
import secrets
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import connector as wire
from schemas.problem import field_errors, unreadable_body_error
from schemas.problem import summary as problem_summary
from service.audit.service import Actor
from service.auth.cache import PrincipalCache
from service.auth.middleware import ONE_AUTHORIZATION
from service.auth.principal import PRINCIPAL_STATE_KEY, Principal, Role
from service.auth.repository import ApiKeyRepository
from service.auth.service import (
    Lookup,
    authenticate,
    bearer_token,
    hash_token,
    principal_of,
    refusal_of,
)
from service.config import Settings
from service.connector.repository import ConnectorRepository
from service.connector.service import ConnectorNotFound
from service.connector.service import connector as connector_service
from service.deps import HealthDep, RegistryDep, SessionDep, SettingsDep, check_every_region
from service.errors import Forbidden, InvalidRequest, Unauthorized
from service.json_body import DuplicateMember, load_json
from service.models import DashboardSession
from service.routing import JSONRoute

router = APIRouter(
    prefix="/dashboard", tags=["connectors"], include_in_schema=False, route_class=JSONRoute
)

COOKIE = "hedui_session"
ALLOWED = (Role.operator, Role.admin)
LOGIN_BODY_LIMIT = 4096

_templates = Environment(
    loader=PackageLoader("service.connector", "templates"),
    autoescape=select_autoescape(["html"]),
    enable_async=False,
)


async def _principal(request: Request, session: AsyncSession) -> Principal | None:
    sent = request.headers.getlist("authorization")
    if len(sent) > 1:
        raise Unauthorized(ONE_AUTHORIZATION)
    bearer = bearer_token(sent[0] if sent else None)
    if bearer is not None:
        cache: PrincipalCache | None = getattr(request.state, "principals", None)
        found = await cache.lookup(bearer) if cache else Lookup(await authenticate(session, bearer))
        if found.principal is None:
            raise Unauthorized(found.refusal or "The bearer token is unknown, expired or revoked")
        return found.principal
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    record = await ConnectorRepository.from_session(session).dashboard_session(hash_token(token))
    if record is None or record.expires_at <= datetime.now(UTC):
        return None
    key = await ApiKeyRepository.from_session(session).get(record.api_key_id)
    if key is None or refusal_of(key, datetime.now(UTC)) is not None:
        return None  # revoked or expired since the sign-in
    return principal_of(key)


async def _operator(request: Request, session: SessionDep) -> Principal:
    principal = await _principal(request, session)
    if principal is None:
        raise Unauthorized("Sign in at /dashboard, or send an operator key as a bearer token")
    if principal.role not in ALLOWED:
        raise Forbidden("The dashboard needs an operator or admin key")
    # Where the audit trail finds who acted (as it does for /v1 callers).
    setattr(request.state, PRINCIPAL_STATE_KEY, principal)
    return principal


DashboardUser = Annotated[Principal, Depends(_operator)]


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    principal = await _principal(request, session)
    if principal is None:
        return _login_page(warning=_cookie_refused(request, settings))
    if principal.role not in ALLOWED:
        return _login_page("That key's role may not see the dashboard (operator or admin).", 403)
    html = _templates.get_template("dashboard.html").render(
        user=principal.name,
        role=principal.role.value,
        refresh_ms=int(settings.dashboard_refresh_s * 1000),
        min_calls=settings.health_min_calls,
        # A pause stops a partner for every region: a key of one region watches only.
        may_pause=not principal.region_prefix,
        region=principal.region_prefix,
    )
    return HTMLResponse(html, headers=_NO_STORE)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    if _cross_site(request):
        # Login CSRF: another site's page posting its own key would sign this browser in
        # as that site's operator. The form is this page's own, sent from this origin.
        return _login_page("Sign in from the dashboard's own page.", 403)
    body = await request.body()
    if len(body) > LOGIN_BODY_LIMIT:
        return _login_page("The form is too large.", 413)
    fields = parse_qs(body.decode("utf-8", "replace"))
    key = (fields.get("key") or [""])[0].strip()
    if not key:
        return _login_page("Paste an API key (hedui apikey create --role operator).", 422)
    principal = await authenticate(session, key)
    if principal is None:
        return _login_page("That key is unknown or revoked, or it has expired.", 401)
    if principal.role not in ALLOWED:
        return _login_page("That key's role may not see the dashboard (operator or admin).", 403)
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    lifetime = timedelta(hours=settings.dashboard_session_hours)
    await ConnectorRepository.from_session(session).add_session(
        DashboardSession(
            token_hash=hash_token(token),
            api_key_id=principal.key_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        path="/dashboard",
        secure=settings.dashboard_secure_cookie,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await ConnectorRepository.from_session(session).drop_session(hash_token(token))
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


@router.get("/static/dashboard.js")
async def script() -> Response:
    text = resources.files("service.connector").joinpath("static/dashboard.js").read_text()
    return Response(text, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/data")
async def data(
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    settings: SettingsDep,
    _: DashboardUser,
) -> JSONResponse:
    """Everything the page shows, in one answer."""
    now = datetime.now(UTC)
    summaries = await connector_service.summaries(session, registry, health, settings, now)
    connectors: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    in_force = set(registry.names())
    for summary in summaries:
        if summary.name not in in_force:  # registered but not enabled: nothing to chart
            if summary.paused is not None:
                # Its pause holds and applies again once it is enabled: say so.
                held.append(
                    {"name": summary.name, "paused": summary.paused.model_dump(mode="json")}
                )
            continue
        try:
            detail = await connector_service.health(
                session, registry, health, settings, summary.name, now
            )
            history = await connector_service.history(
                session, registry, settings, summary.name, now
            )
        except ConnectorNotFound:
            continue  # disabled while this answer was being put together: gone from the page
        connectors.append(
            {
                "summary": summary.model_dump(mode="json"),
                "health": detail.model_dump(mode="json"),
                "history": history.model_dump(mode="json"),
            }
        )
    return JSONResponse(
        {"generated_at": now.isoformat(), "connectors": connectors, "paused_disabled": held},
        headers=_NO_STORE,
    )


async def _json_reason(
    request: Request, model: type[wire.PauseRequest | wire.ResumeRequest] = wire.PauseRequest
) -> str:
    """The reason of a pause (required) or a resume (`ResumeRequest`: optional), as the
    API's routes read it."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidRequest.at(["header", "content-type"], "must be application/json")
    try:
        body = model.model_validate(load_json(await request.body()))
    except DuplicateMember as error:
        raise InvalidRequest.at(["body"], str(error.msg)) from None
    except ValidationError as error:
        errors = field_errors(error.errors(include_input=False))
        for problem in errors:
            problem.loc = ["body", *problem.loc]
        raise InvalidRequest(problem_summary(errors) or "", errors=errors) from None
    except (ValueError, RecursionError) as error:
        # Not JSON, not UTF-8, nested past the decoder's depth, or a number of more digits
        # than Python converts: named as the API's routes name them, never a 500.
        problem = unreadable_body_error(error)
        raise InvalidRequest(problem_summary([problem]) or "", errors=[problem]) from None
    return body.reason


@router.post("/connectors/{name}/pause")
async def pause(
    name: str,
    request: Request,
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    principal: DashboardUser,
) -> wire.ConnectorSummary:
    check_every_region(principal)
    reason = await _json_reason(request)
    return await connector_service.pause(
        session, registry, health, Actor.of(principal), name, reason
    )


@router.post("/connectors/{name}/resume")
async def resume(
    name: str,
    request: Request,
    session: SessionDep,
    registry: RegistryDep,
    health: HealthDep,
    principal: DashboardUser,
) -> wire.ConnectorSummary:
    check_every_region(principal)
    reason = await _json_reason(request, wire.ResumeRequest)
    return await connector_service.resume(
        session, registry, health, Actor.of(principal), name, reason
    )


_NO_STORE = {"Cache-Control": "no-store"}


def _cross_site(request: Request) -> bool:
    """Sent by a page of another site: the browser says so (`Sec-Fetch-Site`), or its
    `Origin` is not this server's. A script (curl) sends neither and is not refused."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() != host.lower()


def _cookie_refused(request: Request, settings: Settings) -> str | None:
    """Why this browser will not keep the session cookie, if it will not: a Secure cookie
    comes back over plain HTTP from the loopback alone (`localhost`, 127.0.0.1, [::1]:
    browsers hold them trustworthy), so signing in elsewhere would silently lead back to
    this page."""
    host = (request.url.hostname or "").lower().strip("[]")
    loopback = host == "localhost" or host.endswith(".localhost") or _is_loopback_ip(host)
    if request.url.scheme != "http" or not settings.dashboard_secure_cookie or loopback:
        return None
    return (
        "This page was reached over plain HTTP, and the sign-in cookie is Secure: the "
        "browser will not send it back, so signing in would bring you back here. Open the "
        "dashboard over HTTPS (or at http://localhost or 127.0.0.1 on this machine), or, "
        "on a trusted network only, set HEDUI_DASHBOARD_SECURE_COOKIE=off."
    )


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _login_page(
    error: str | None = None, status: int = 200, *, warning: str | None = None
) -> HTMLResponse:
    html = _templates.get_template("login.html").render(error=error, warning=warning)
    return HTMLResponse(html, status_code=status, headers=_NO_STORE)
