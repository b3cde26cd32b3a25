"""HeduiError and every other exception mapped to RFC 9457 problem+json, in one place."""

import re
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.problem import Problem, ProblemError, field_errors, summary, unreadable_body_error
from schemas.request import NUL_MESSAGE
from service.crypto.keyring import KeyringError
from service.db import is_database_unavailable, is_text_refused
from service.errors import (
    PROBLEM_BASE,
    PROBLEM_MEDIA_TYPE,
    HeduiError,
    InvalidRequest,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from service.logging import redact_line
from service.path_params import shown_path
from service.routing import allowed_methods

log = structlog.get_logger(__name__)


NOT_JSON = "The body must be JSON, sent with Content-Type: application/json"


def not_json(headers: Headers, error: RequestValidationError) -> bool:
    """A body that failed as a whole, sent as something other than JSON (a form, plain
    text, or with no Content-Type at all: `curl -d` without a header), which is not read
    as JSON: the answer is 415 naming the header, not a 422 about the body's shape. No
    body at all is a body missing (422 at `body`), whatever the headers say."""
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return False
    sent = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    return sent and any(tuple(item.get("loc", ())) == ("body",) for item in error.errors())


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every problem leaves through here, so here is where echoed text is masked: a path,
    an unknown field name or a message may carry an ID number the caller sent."""
    return JSONResponse(
        _redacted(problem.to_body()),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        # A lone surrogate the caller sent (`"\\ud800"` in JSON) and a message echoes
        # cannot be encoded: the answer would fail and the connection drop. U+FFFD instead.
        # An ID number written apart (`/v1/verifications/530102-19800101-123X`) too.
        return redact_line(_LONE_SURROGATE.sub("\ufffd", value))
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeduiError)
    async def _hedui_error(request: Request, exc: HeduiError) -> JSONResponse:
        return problem_response(exc.problem(shown_path(request)), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not_json(request.headers, exc):
            refused = UnsupportedMediaType(
                NOT_JSON,
                errors=[ProblemError(loc=["header", "content-type"], msg=NOT_JSON)],
            )
            return problem_response(refused.problem(shown_path(request)))
        errors = field_errors(exc.errors())
        return problem_response(
            Problem(
                type=PROBLEM_BASE + "validation",
                title="Invalid request",
                status=422,
                detail=summary(errors),
                instance=shown_path(request),
                errors=errors,
            )
        )

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if is_database_unavailable(exc):
            log.warning(
                "database_unavailable", path=request.url.path, error_type=type(exc).__name__
            )
            unavailable = ServiceUnavailable()
            return problem_response(unavailable.problem(shown_path(request)), unavailable.headers)
        if is_text_refused(exc):
            refused = InvalidRequest.at(["body"], NUL_MESSAGE)
            return problem_response(refused.problem(shown_path(request)))
        return await _unexpected(request, exc)

    # Registered by type (not only as the catch-all) so that Starlette's exception
    # middleware answers them, and an outage is an ordinary 503 rather than a crash.
    for error_type in (DBAPIError, PoolTimeout, OSError):
        app.add_exception_handler(error_type, _database)

    @app.exception_handler(KeyringError)
    async def _sealed(request: Request, exc: KeyringError) -> JSONResponse:
        # A sealed value that does not open where it was read was altered or moved: never
        # answered as if it were fine. The message names table, column and row, no data.
        log.error("sealed_value_rejected", path=request.url.path, error=str(exc))
        return _server_error(
            request,
            "Stored data failed its integrity check",
            "A stored value could not be verified; it has been logged",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log (redacted); the caller learns nothing of internals.
        log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
        return _server_error(
            request,
            "Internal error",
            "The service failed to handle this request; it has been logged",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return problem_response(unreadable.problem(shown_path(request)))
        headers: dict[str, Any] | None = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allowed = allowed_methods(request.app.router.routes, request.scope)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        slug = _SLUG_BY_STATUS.get(exc.status_code)
        return problem_response(
            Problem(
                type=PROBLEM_BASE + slug if slug else "about:blank",
                title=_reason(exc.status_code),
                status=exc.status_code,
                detail=str(exc.detail) if exc.detail else None,
                instance=shown_path(request),
            ),
            headers,
        )


def _server_error(request: Request, title: str, detail: str) -> JSONResponse:
    """A 500 problem: what failed, in words, and that it was logged; nothing of internals."""
    return problem_response(
        Problem(title=title, status=500, instance=shown_path(request), detail=detail)
    )


def _unreadable_body(exc: StarletteHTTPException) -> InvalidRequest | None:
    """FastAPI answers a JSON body it cannot even decode (bytes that are not UTF-8, nesting
    deeper than the parser goes) with a bare 400 "error parsing the body". Such a body is
    malformed like any other that is not JSON: a validation problem naming the body (and
    the byte where decoding failed, when known), as `JSON decode error`s already are."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    error = unreadable_body_error(cause)
    return InvalidRequest.at(error.loc, error.msg)


_SLUG_BY_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    408: "body-timeout",
    413: "too-large",
}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
