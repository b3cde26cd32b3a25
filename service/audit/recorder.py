"""The audit dependency every route passes through (installed app-wide in `create_app`).

It looks the route up in `service.audit.actions.ACTIONS` and records one event:
- on success, in the request's own transaction, just before it commits: the change and its
  record are stored together or not at all. A route that commits its change before it
  answers (accepting a verification, `Prefer: wait`) records the event in that commit
  itself (`change_event`), and nothing is recorded again at the end;
- on refusal (403, 404, 409, ...), in a transaction of its own, since the request's is
  rolled back: probing for another region's household leaves a trace too.

Refusals for load (429 rate limited, 503 overloaded or unavailable) say nothing about who
may see what, and must stay cheap while the service is busy: they are counted in the
metrics (`hedui_verification_requests_shed_total`), not written to the trail.

A route that reads people no verification names (a connector's test read) says whom with
`about` before it acts: its event then carries their household's region and their ID
numbers masked, refused or not.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import ColumnElement
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.actions import ACTIONS, Action
from service.audit.service import Actor
from service.audit.service import audit as audit_service
from service.auth.principal import PRINCIPAL_STATE_KEY, Principal
from service.bulk import Rows
from service.db import session_scope
from service.deps import SessionDep
from service.error_handlers import not_json
from service.path_params import shown
from service.recipient.repository import RecipientRepository
from service.request_id import STATE_KEY as REQUEST_ID_KEY
from service.verification.repository import VerificationRepository
from service.warning.repository import WarningRepository

log = structlog.get_logger(__name__)

LOAD_REFUSALS = frozenset({"429", "503"})
RECORDED_STATE_KEY = "audit_recorded"
SUBJECT_STATE_KEY = "audit_subject"
CREATED_STATE_KEY = "audit_created"


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom a request reads when no verification names them."""

    region: str | None
    """Their household's region: the auditors of that region find the event (None: not
    known, e.g. a person looked up anywhere in the caller's region; the event is then the
    actor's region's)."""
    detail: str
    """Who they are, ID numbers masked (`mask_id_number`), never a name or an amount."""
    blind: str | None = None
    """The one person it is about, by the blind index of their ID number: what
    `POST /v1/audit/search` finds them by."""


def about(request: Request, *, region: str | None, detail: str, blind: str | None = None) -> None:
    """The request reads these people: its event, success or refusal, names them."""
    setattr(request.state, SUBJECT_STATE_KEY, Subject(region, detail, blind))


def created(request: Request, object_id: str) -> None:
    """The request created this object (a route answering without `Location`): its event
    names it."""
    setattr(request.state, CREATED_STATE_KEY, object_id)


def _subject(request: Request) -> Subject | None:
    subject = getattr(request.state, SUBJECT_STATE_KEY, None)
    return subject if isinstance(subject, Subject) else None


def route_template(request: Request) -> str | None:
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else None


def action_for(request: Request) -> Action | None:
    template = route_template(request)
    if template is None:
        return None
    return ACTIONS.get((request.method, template))


def _object_id(request: Request, action: Action, response: Response | None) -> str | None:
    if action.object_param is not None:
        value = request.path_params.get(action.object_param)
        # A path names an object by its id; whatever else a caller put there (a name, an
        # amount, an ID number) gets the 404 an unknown id gets, and is not kept for ever.
        return shown(action.object_param, value) if value is not None else None
    location = response.headers.get("location") if response is not None else None
    if location:
        return location.rstrip("/").rsplit("/", 1)[-1]
    made = getattr(request.state, CREATED_STATE_KEY, None) if response is not None else None
    return made if isinstance(made, str) else None


async def audit_trail(
    request: Request, response: Response, session: SessionDep
) -> AsyncIterator[None]:
    action = action_for(request)
    if action is None:
        yield
        return
    try:
        yield
    except Exception as error:
        # The request's transaction is going to be rolled back anyway: end it now, so that
        # on SQLite its write lock does not block the refusal's own transaction.
        await session.rollback()
        outcome = _status_of(request, error)
        if outcome not in LOAD_REFUSALS:
            await _record_refusal(request, action, outcome)
        raise
    if getattr(request.state, RECORDED_STATE_KEY, False):
        return
    object_id = _object_id(request, action, response)
    subject = _subject(request)
    if subject is not None:
        await _record_success(
            request,
            session,
            action,
            object_id,
            subject.region,
            detail=subject.detail,
            subject_blind=subject.blind,
        )
    else:
        await _record_success(request, session, action, object_id, _region_of(action, object_id))


def change_event(request: Request, *, object_id: str, object_region: str) -> list[Rows]:
    """The route's event as a row for the route to insert with its change, in the
    transaction it is about to commit (none when the route records nothing, or nobody
    authenticated); once that commit has succeeded the route calls `recorded_with_change`,
    and the end of the request records nothing more."""
    action = action_for(request)
    event = None if action is None else _success(request, action, object_id, object_region)
    return [] if event is None else [audit_service.event_rows(**event)]


async def _record_success(
    request: Request,
    session: AsyncSession,
    action: Action,
    object_id: str | None,
    object_region: str | ColumnElement[str] | None,
    *,
    detail: str | None = None,
    subject_blind: str | None = None,
) -> None:
    """The event of a route that did what it was asked, by whoever authenticated (nothing
    without a principal: nobody to attribute it to)."""
    event = _success(request, action, object_id, object_region)
    if event is not None:
        await audit_service.record(session, **event, detail=detail, subject_blind=subject_blind)


def _success(
    request: Request,
    action: Action,
    object_id: str | None,
    object_region: str | ColumnElement[str] | None,
) -> dict[str, Any] | None:
    """What a route's success event says, None without a principal."""
    principal = getattr(request.state, PRINCIPAL_STATE_KEY, None)
    if not isinstance(principal, Principal):
        return None
    return {
        "actor": Actor.of(principal),
        "action": action.name,
        "object_type": action.object_type,
        "object_id": object_id,
        "object_region": object_region,
        "request_id": getattr(request.state, REQUEST_ID_KEY, None),
    }


def recorded_with_change(request: Request) -> None:
    """The event `change_event` gave has been committed with the change."""
    setattr(request.state, RECORDED_STATE_KEY, True)


def _status_of(request: Request, error: Exception) -> str:
    """The HTTP status a refusal is answered with; `error` for anything else (a 500)."""
    if isinstance(error, RequestValidationError):
        # The body or a parameter failed its model: 422, or 415 for a body not sent as JSON.
        return "415" if not_json(request.headers, error) else "422"
    status: Any = getattr(error, "status", None) or getattr(error, "status_code", None)
    return str(status) if isinstance(status, int) else "error"


_PLACE_OF = {
    "verification": VerificationRepository.place_of,
    "recipient": RecipientRepository.place_of,
    "warning": WarningRepository.place_of,
}
"""The objects that are about a household, and how to read its place."""


def _region_of(action: Action, object_id: str | None) -> ColumnElement[str] | None:
    """The most precise code of the household the event is about (a verification, a
    recipient, a warning), so that the auditors of its region, county or township, find
    the event; read within the record's own INSERT."""
    place_of = _PLACE_OF.get(action.object_type)
    if place_of is None or object_id is None:
        return None
    return place_of(object_id)


async def _record_refusal(request: Request, action: Action, outcome: str) -> None:
    principal = getattr(request.state, PRINCIPAL_STATE_KEY, None)
    factory = getattr(request.state, "session_factory", None)
    if not isinstance(principal, Principal) or factory is None:
        return  # nobody authenticated: nothing to attribute
    try:
        async for session in session_scope(factory):
            await audit_service.record(
                session,
                Actor.of(principal),
                action.name,
                object_type=action.object_type,
                object_id=_object_id(request, action, None),
                request_id=getattr(request.state, REQUEST_ID_KEY, None),
                outcome=outcome,
                # Whom a refused read named (a probe of another region's person): the
                # event stays the actor's region's, as every refusal's.
                detail=subject.detail if (subject := _subject(request)) is not None else None,
                subject_blind=subject.blind if subject is not None else None,
            )
    except (SQLAlchemyError, OSError) as error:
        # The refusal stands; the database that could not store its record is the same
        # one the health check reports on.
        log.warning("audit_refusal_not_recorded", action=action.name, error=type(error).__name__)
