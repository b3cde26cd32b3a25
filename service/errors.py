"""The one error hierarchy, mapped to RFC 9457 problem+json in one place."""

import re
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.identity import hides_id_number, redact_id_numbers
from schemas.problem import Problem, ProblemError, field_errors, summary, unreadable_body_error
from schemas.request import NUL_MESSAGE
from service.crypto.keyring import KeyringError
from service.db import is_database_unavailable, is_text_refused

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"
"""Problem types are served by hedui itself (`GET /problems/{slug}`), so they resolve
wherever the service runs, intranets included."""

PROBLEM_TYPES: dict[str, str] = {
    "internal": "The service failed to handle the request; the cause is in its log.",
    "unauthorized": "No bearer token, or one that is unknown, revoked or expired (`detail` "
    "says which). Create keys with `hedui apikey create`; `hedui apikey list` shows each key's "
    "expiry.",
    "forbidden": "The key's role may not do this, the region is outside the key's region, "
    "or separation of duties forbids it (whoever submitted a verification cannot decide it).",
    "not-found": "No such resource in the caller's region. Resources of other regions are "
    "reported exactly like absent ones.",
    "conflict": "The resource is not in a state that allows this.",
    "unavailable": "The service cannot reach its database right now (a restart or an outage). "
    "Nothing was changed by this request; try again after `Retry-After` seconds.",
    "overloaded": "This process runs as many verifications as it may at once "
    "(HEDUI_MAX_IN_FLIGHT_RUNS); nothing was stored. Try again after `Retry-After` seconds.",
    "rate-limited": "This API key has used its requests for the current minute "
    "(HEDUI_RATE_LIMIT_PER_MINUTE, per process); nothing was stored. The `RateLimit` and "
    "`RateLimit-Policy` headers say the quota; try again after `Retry-After` seconds.",
    "validation": "The request is malformed; `errors` lists each wrong field (`loc`) and why "
    "(`msg`). Nothing was stored.",
    "report-not-ready": "The verification has not completed yet; its report exists once it "
    "has. Poll the verification or use `Prefer: wait=N`.",
    "headers-too-large": "The request's line and headers took more than 64 KiB, or it had "
    "more than 100 header lines; the connection was closed. Send the data in the body.",
    "decision-exists": "The verification already has its decision; decisions are never changed.",
    "already-on-the-roll": "A member of this household is on the roll of the same program "
    "already (active or under review): a person is paid once. With another household: stop "
    "that recipient first (`POST /v1/recipients/{id}/stop`), or return this one. A household "
    "on the roll is re-checked, not verified anew: under review, it is decided on its "
    "re-check's verification (`review_verification_id` of its warnings); a re-check returned "
    "is started again by the next re-check pass, and its new verification is the one to "
    "decide. Return this one.",
    "recipient-left": "The recipient this re-check is about has left the roll (stopped, or "
    "rejected) since the re-check began: approving it would record a benefit the roll does not "
    "pay. Reject or return it; a household applying again is a new verification.",
    "recheck-superseded": "A later re-check of the same recipient has its report since this one "
    "(one that failed, or waits for a new authorization, has none and supersedes nothing): "
    "an approval or rejection of the older report would overwrite what the newer one decides. "
    "Decide the newer re-check; this one can only be returned.",
    "too-large": "The request body is larger than this service accepts (HEDUI_MAX_BODY_BYTES, "
    "1 MiB unless configured); nothing of it was read. Send less, or ask the operator.",
    "body-timeout": "The request body did not arrive in time (HEDUI_BODY_TIMEOUT_S, 10 s unless "
    "configured, plus a second for every HEDUI_BODY_MIN_RATE bytes received); nothing was "
    "stored and the connection was closed. Send the body at once, or at a steady pace.",
    "batch-closed": "The batch is closed or cancelled: it takes no more households.",
    "batch-too-large": "The batch would hold more households than this service accepts in one "
    "batch (HEDUI_MAX_BATCH_HOUSEHOLDS, 100,000 unless configured). The lines before the limit "
    "were stored (the batch's `lines_received`); none after it. Start another batch.",
    "unsupported-media-type": "The body's Content-Type is not one this operation reads; "
    "batches take `application/json` or `application/x-ndjson`.",
    "near-relative-revoked": "The near-relative registration was already revoked.",
    "api-key-revoked": "The API key was already revoked; a revocation is never undone.",
    "records-purged": "The raw partner records behind this report were purged under the "
    "retention policy (HEDUI_RETENTION_RAW_DAYS); the stored report and its decisions stand, "
    "but it cannot be re-scored.",
    "verification-withdrawn": "The verification was withdrawn (the household withdrew its "
    "consent, or the caseworker the application): it is withdrawn once, cannot be decided or "
    "re-scored, and its raw partner records are gone. A report made before the withdrawal "
    "stays readable as it was stored.",
    "near-relative-duplicate": "The same relative is already registered, and not revoked, for "
    "the same staff member and region; `detail` names that registration.",
}


# The problem responses every /v1 operation documents in OpenAPI.
PROBLEMS: dict[int | str, dict[str, object]] = {
    code: {
        "model": Problem,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for code in (400, 401, 403, 404, 409, 422)
}


class HeduiError(Exception):
    """An error a caller can act on; carries its HTTP status and a stable problem type."""

    status: int = 500
    title: str = "Internal error"
    slug: str = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[ProblemError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers

    def problem(self, instance: str | None = None) -> Problem:
        return Problem(
            type=PROBLEM_BASE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        )


class Unauthorized(HeduiError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HeduiError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(HeduiError):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(HeduiError):
    status, title, slug = 409, "Conflict", "conflict"


class InvalidRequest(HeduiError):
    status, title, slug = 422, "Invalid request", "validation"

    @classmethod
    def at(cls, loc: list[str | int], msg: str) -> "InvalidRequest":
        return cls(msg, errors=[ProblemError(loc=loc, msg=msg)])


class VerificationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such verification")


class ReportNotReady(Conflict):
    slug = "report-not-ready"

    def __init__(self, status: str) -> None:
        super().__init__(f"The verification is {status}; its report exists once it is completed")


class DecisionExists(Conflict):
    slug = "decision-exists"

    def __init__(self) -> None:
        super().__init__("This verification already has a decision")


class AlreadyOnTheRoll(Conflict):
    slug = "already-on-the-roll"

    def __init__(self, member: str, program: str, *, under_review: bool = False) -> None:
        if under_review:
            super().__init__(
                f"Member {member} is on the {program} roll already, in a household under "
                "review: a person is paid once, and a household on the roll is re-checked, "
                "not verified anew. The approver decides on its re-check's verification (the "
                "`review_verification_id` of its warnings); a re-check returned is started "
                "again by the next re-check pass (the recipient's `next_recheck_on`), and its "
                "new verification is the one to decide. Return this one"
            )
        else:
            super().__init__(
                f"Member {member} is on the {program} roll already, with another household: "
                "a person is paid once"
            )


class RecipientLeft(Conflict):
    slug = "recipient-left"

    def __init__(self, left_on: object) -> None:
        super().__init__(
            f"The recipient this re-check is about left the roll on {left_on}: an approval "
            "cannot put them back (submit a new verification for a new application); a "
            "rejection or a return is still recorded"
        )


class RecheckSuperseded(Conflict):
    slug = "recheck-superseded"

    def __init__(self) -> None:
        super().__init__(
            "A later re-check of this recipient has its report: its decision, not this one's, "
            "says what the roll pays (return this one)"
        )


class VerificationWithdrawn(Conflict):
    slug = "verification-withdrawn"

    ALREADY = "The verification was withdrawn already"
    NOT_DECIDED = "The verification was withdrawn; it cannot be decided"
    NOT_RESCORED = (
        "The verification was withdrawn and its partner records purged; it cannot be "
        "re-scored (the report stored before the withdrawal stays readable)"
    )
    NO_REPORT = "The verification was withdrawn before it completed; it has no report"


class BatchNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such batch")


class BatchClosed(Conflict):
    slug = "batch-closed"

    def __init__(self, status: str) -> None:
        super().__init__(f"The batch is {status}; it takes no more households")


class BatchTooLarge(HeduiError):
    status, title, slug = 413, "Content too large", "batch-too-large"

    def __init__(
        self,
        limit: int,
        stored_through: int,
        *,
        batch_id: str | None = None,
        sent: int | None = None,
    ) -> None:
        self.limit, self.stored_through = limit, stored_through
        detail = (
            f"A batch holds at most {limit} lines (HEDUI_MAX_BATCH_HOUSEHOLDS); lines 1 to "
            f"{stored_through} are stored, none after"
            if sent is None
            else f"A batch holds at most {limit} lines (HEDUI_MAX_BATCH_HOUSEHOLDS) and this "
            f"JSON body holds {sent}: nothing of it is stored"
        )
        if batch_id is None:
            super().__init__(detail)
            return
        super().__init__(
            f"{detail}, in batch {batch_id}: close it (POST /v1/batches/{batch_id}/close) to "
            "have it complete, and send the rest as another batch",
            headers={"Location": f"/v1/batches/{batch_id}"},
        )


class UnsupportedMediaType(HeduiError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


NOT_JSON = "The body must be JSON, sent with Content-Type: application/json"


def not_json(content_type: str | None, error: RequestValidationError) -> bool:
    """A body that failed as a whole, sent as something other than JSON (a form, plain
    text, or with no Content-Type at all: `curl -d` without a header), which is not read
    as JSON: the answer is 415 naming the header, not a 422 about the body's shape."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return False
    return any(tuple(item.get("loc", ())) == ("body",) for item in error.errors())


class ServiceUnavailable(HeduiError):
    status, title, slug = 503, "Service unavailable", "unavailable"
    RETRY_AFTER_S = 5

    def __init__(self, detail: str = "The database is unavailable; try again shortly") -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_S)})


class Overloaded(HeduiError):
    status, title, slug = 503, "Service overloaded", "overloaded"
    RETRY_AFTER_S = 2

    RUNNING = "Too many verifications are running; try again shortly"
    QUEUED = "Too many verifications are waiting to run; try again shortly"

    def __init__(self, detail: str = RUNNING) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_S)})


class RateLimited(HeduiError):
    status, title, slug = 429, "Too many requests", "rate-limited"

    def __init__(self, retry_after_s: int, headers: dict[str, str]) -> None:
        super().__init__(
            "This API key's request quota for the current minute is used up",
            headers={"Retry-After": str(retry_after_s), **headers},
        )


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
        return redact_id_numbers(_LONE_SURROGATE.sub("\ufffd", value))
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeduiError)
    async def _hedui_error(request: Request, exc: HeduiError) -> JSONResponse:
        return problem_response(exc.problem(request.url.path), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not_json(request.headers.get("content-type"), exc):
            refused = UnsupportedMediaType(
                NOT_JSON,
                errors=[ProblemError(loc=["header", "content-type"], msg=NOT_JSON)],
            )
            return problem_response(refused.problem(request.url.path))
        errors = field_errors(exc.errors())
        return problem_response(
            Problem(
                type=PROBLEM_BASE + "validation",
                title="Invalid request",
                status=422,
                detail=summary(errors),
                instance=request.url.path,
                errors=errors,
            )
        )

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if is_database_unavailable(exc):
            log.warning(
                "database_unavailable", path=request.url.path, error_type=type(exc).__name__
            )
            unavailable = ServiceUnavailable()
            return problem_response(unavailable.problem(request.url.path), unavailable.headers)
        if is_text_refused(exc):
            refused = InvalidRequest.at(["body"], NUL_MESSAGE)
            return problem_response(refused.problem(request.url.path))
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
        return problem_response(
            Problem(
                title="Stored data failed its integrity check",
                status=500,
                instance=request.url.path,
                detail="A stored value could not be verified; it has been logged",
            )
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log (redacted); the caller learns nothing of internals.
        log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
        return problem_response(
            Problem(
                title="Internal error",
                status=500,
                instance=request.url.path,
                detail="The service failed to handle this request; it has been logged",
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return problem_response(unreadable.problem(request.url.path))
        headers: dict[str, Any] | None = getattr(exc, "headers", None)
        slug = _SLUG_BY_STATUS.get(exc.status_code)
        return problem_response(
            Problem(
                type=PROBLEM_BASE + slug if slug else "about:blank",
                title=_reason(exc.status_code),
                status=exc.status_code,
                detail=str(exc.detail) if exc.detail else None,
                instance=request.url.path,
            ),
            headers,
        )


def _unreadable_body(exc: StarletteHTTPException) -> InvalidRequest | None:
    """FastAPI answers a JSON body it cannot even decode (bytes that are not UTF-8, nesting
    deeper than the parser goes) with a bare 400 "error parsing the body". Such a body is
    malformed like any other that is not JSON: a validation problem naming the body (and
    the byte where decoding failed, when known), as `JSON decode error`s already are."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    errors = [unreadable_body_error(cause)]
    # Worded like the validation handler's detail: where, then why.
    return InvalidRequest(summary(errors) or "", errors=errors)


_SLUG_BY_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    408: "body-timeout",
    413: "too-large",
}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def check_idempotency_key(key: str | None) -> None:
    """An `Idempotency-Key` is stored and logged as sent: not blank, and no ID number."""
    if key is None:
        return
    if not key.strip():
        raise InvalidRequest.at(["header", "Idempotency-Key"], "must not be blank")
    if hides_id_number(key):
        raise InvalidRequest.at(
            ["header", "Idempotency-Key"], "must not contain an ID number or any run of 18 digits"
        )
