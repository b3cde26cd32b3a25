"""The sandbox's OpenAPI document as the agencies really speak: request bodies an agency
reads by hand (XML, forms) with their media type and an example, and the 422 every
refused control request gets, RFC 9457 problem+json (`sandbox/problems.py`), not FastAPI's
`HTTPValidationError`."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from sandbox.problems import VALIDATION_TYPE
from schemas.problem import Problem, ProblemError

PROBLEM_MEDIA_TYPE = "application/problem+json"
VALIDATION_EXAMPLE = Problem(
    type=VALIDATION_TYPE,
    title="Invalid request",
    status=422,
    detail="body.id_number: ID number has a wrong check character",
    instance="/people",
    errors=[ProblemError(loc=["body", "id_number"], msg="ID number has a wrong check character")],
).to_body()


class XMLResponse(Response):
    """An answer in XML (documented as such; handlers build the bytes themselves)."""

    media_type = "application/xml"


def request_body(
    media_type: str, example: object, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: the body, required, in
    `media_type` (a string unless `schema` says more), with `example`."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": schema or {"type": "string"}, "example": example},
            },
        }
    }


def install_openapi(app: FastAPI) -> None:
    """Serve `app`'s document with every 422 as the validation problem the sandbox sends."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_problems(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            refused = operation.get("responses", {}).get("422")
            if refused is None:
                continue
            refused["description"] = (
                "The request is malformed: `errors` names each wrong field (`loc`) and why "
                "(`msg`), never echoing what was sent. Nothing was changed."
            )
            refused["content"] = {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": VALIDATION_EXAMPLE,
                }
            }
    return document
