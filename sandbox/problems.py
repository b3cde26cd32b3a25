"""The sandbox's refusals of malformed control and agency requests: RFC 9457
problem+json naming each wrong field, as hedui's own (and under the same problem type).

Nothing the caller sent is echoed but masked: a seeding body is full of personal data."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.identity import redact_id_numbers
from schemas.problem import Problem, ProblemError, field_errors, summary, unreadable_body_error

VALIDATION_TYPE = "/problems/validation"
"""Relative, so it resolves where the sandbox answers: hedui's own description when the
sandbox is mounted in hedui, the sandbox's (`GET /problems/validation`) when alone."""
VALIDATION_DESCRIPTION = (
    "The request is malformed; `errors` lists each wrong field (`loc`) and why (`msg`). "
    "Nothing was changed."
)


def validation_problem(request: Request, errors: list[ProblemError]) -> JSONResponse:
    masked = [
        ProblemError(
            loc=[redact_id_numbers(part) if isinstance(part, str) else part for part in e.loc],
            msg=redact_id_numbers(e.msg),
        )
        for e in errors
    ]
    problem = Problem(
        type=VALIDATION_TYPE,
        title="Invalid request",
        status=422,
        detail=summary(masked),
        instance=request.url.path,
        errors=masked,
    )
    return JSONResponse(problem.to_body(), status_code=422, media_type="application/problem+json")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Only location and message: pydantic's `input` would echo the body back."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return validation_problem(request, field_errors(errors))


async def _http_error(request: Request, exc: Exception) -> Response:
    """A JSON body FastAPI cannot even decode (not UTF-8, nested too deeply) is malformed
    like any other; every other HTTP error keeps FastAPI's answer."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it alone
    cause = exc.__cause__
    if exc.status_code == 400 and cause is not None:
        return validation_problem(request, [unreadable_body_error(cause)])
    return await http_exception_handler(request, exc)


def install_problems(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    @app.get("/problems/validation", tags=["control"], summary="What a refused request means")
    async def validation_type() -> dict[str, Any]:
        return {"type": VALIDATION_TYPE, "description": VALIDATION_DESCRIPTION}
