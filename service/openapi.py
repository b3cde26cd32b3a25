"""The OpenAPI document: examples, the problems each operation can answer, and the link to
the sandbox's own document.

Examples are added when the document is first built (not at import; see
`service.openapi_examples`). Each route names the problems it raises itself
(`service.problem_docs.problems`); those every operation of a kind can answer are derived
here from the route: what authentication and the database answer any `/v1` call (401,
503), what a role dependency refuses (403), what the request guard answers a body (408,
413) and what a body that is not JSON is (415). Every problem response is
`application/problem+json` with the Problem schema, and its examples are the problems the
service sends, `instance` included.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from schemas.problem import Problem
from service.audit.recorder import audit_trail
from service.auth.middleware import ONE_AUTHORIZATION
from service.auth.roles import ROLE_CHECKS, role_refusal
from service.config import Settings
from service.deps import EVERY_REGION, get_principal, get_session
from service.error_handlers import NOT_JSON
from service.errors import (
    PROBLEM_MEDIA_TYPE,
    Forbidden,
    InvalidRequest,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from service.guard import BodyLimit, body_limit, late, too_large
from service.openapi_examples import PATH_EXAMPLES, RESPONSE_EXAMPLES
from service.problem_docs import add_problem
from service.routing import API_PREFIX, BODY_METHODS

SANDBOX_DOCS = """

**Sandbox agencies.** This server also runs the fake partner agencies under `/sandbox`
(seed people, inject faults, and each agency's own wire format). They have their own API
document: [/sandbox/docs](/sandbox/docs) (`/sandbox/openapi.json`).
"""

UNKNOWN_PARAMETER = InvalidRequest.at(
    ["query", "colour"], "is not a parameter of this endpoint (it takes: cursor, limit)"
)
NO_BODY = InvalidRequest.at(["body"], "this endpoint takes no body: send none (or {})")
UNKNOWN_MEMBER = InvalidRequest.at(["body", "colour"], "Extra inputs are not permitted")


def install_openapi(
    app: FastAPI,
    settings: Settings,
    *,
    larger: tuple[BodyLimit, ...] = (),
) -> None:
    """Build the document once: examples, derived problem responses, the sandbox link
    (when mounted). `larger`: the request guard's larger body limits (batches)."""
    if settings.sandbox_enabled:
        app.description += SANDBOX_DOCS
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        routes = {
            (route.path, method.lower()): route
            for route in _api_routes(app.routes)
            for method in route.methods or ()
        }
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                route = routes.get((path, method))
                _only_problem_json(operation)
                if route is not None:
                    _add_problems(operation, route, path, method, settings, larger)
                _fill_instances(operation, path)
                _add_examples(schema, operation, path, method)
        _problem_components(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_problems(
    operation: dict[str, Any],
    route: APIRoute,
    path: str,
    method: str,
    settings: Settings,
    larger: tuple[BodyLimit, ...],
) -> None:
    """The problems any operation like this one can answer, from its route."""
    responses = operation["responses"]
    calls = set(_calls(route.dependant))
    api = path.startswith(API_PREFIX)
    if api or get_principal in calls:
        # `service.auth.middleware` answers before the route, the dependency after.
        for error in (
            Unauthorized(),
            Unauthorized("The bearer token is unknown, expired or revoked"),
            Unauthorized(ONE_AUTHORIZATION),
        ):
            _add(responses, error.problem().to_body())
    for call in calls:
        if call in ROLE_CHECKS:
            allowed, every_region = ROLE_CHECKS[call]
            _add(responses, role_refusal(allowed).problem().to_body())
            if every_region:
                _add(responses, Forbidden(EVERY_REGION).problem().to_body())
    body = "requestBody" in operation
    if body:
        limit, setting = body_limit(method.upper(), path, settings.max_body_bytes, larger)
        _add(responses, too_large(path, limit, setting).to_body())
        _add(responses, late(path, settings.body_timeout_s).to_body())
        if "application/json" in operation["requestBody"].get("content", {}):
            # A JSON body sent as something else (`service.error_handlers.not_json`).
            _add(responses, UnsupportedMediaType(NOT_JSON).problem().to_body())
    if api:
        # Every `/v1` query is checked (`service.routing`); a body is checked against its
        # model, and an operation that takes none refuses one that says anything.
        if "422" not in responses:
            _add(responses, UNKNOWN_PARAMETER.problem().to_body())
        if body and _json_model(operation):
            _add(responses, UNKNOWN_MEMBER.problem().to_body())
        if not body and method.upper() in BODY_METHODS:
            _add(responses, NO_BODY.problem().to_body())
    if api or get_session in calls:
        # The key is looked up, the session opened: a database away is 503.
        _add(responses, ServiceUnavailable().problem().to_body())


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The API routes, those of included routers too (FastAPI keeps an included router
    whole, as a route of its own that holds it: `original_router`)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _add(responses: dict[str, Any], problem: dict[str, Any]) -> None:
    add_problem(responses, problem, as_text=True)


def _calls(dependant: Dependant) -> Iterator[Any]:
    """The dependencies a route's answer comes through; not the audit trail's own session,
    which every route has and which only the routes it records use."""
    for dependency in dependant.dependencies:
        if dependency.call is audit_trail:
            continue
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _json_model(operation: dict[str, Any]) -> bool:
    media = operation["requestBody"].get("content", {}).get("application/json", {})
    schema = media.get("schema", {})
    return any("$ref" in s for s in [schema, *schema.get("anyOf", [])])


def _only_problem_json(operation: dict[str, Any]) -> None:
    """Errors are answered as `application/problem+json` only: FastAPI's default 422
    (`application/json`, HTTPValidationError) is not what the service sends, nor is a
    Problem model's `application/json`. A 422 FastAPI adds to an operation whose
    parameters cannot fail validation (`/problems/{slug}`) goes."""
    responses = operation["responses"]
    for status, response in list(responses.items()):
        content = response.get("content", {})
        json_schema = content.get("application/json", {}).get("schema", {})
        if status >= "400" and (
            PROBLEM_MEDIA_TYPE in content or json_schema.get("$ref", "").endswith("ValidationError")
        ):
            content.pop("application/json", None)
            if not content:
                del responses[status]


def _fill_instances(operation: dict[str, Any], path: str) -> None:
    """Each problem example's `instance` is the path it was asked at, as the service sends."""
    instance = path
    for name, value in PATH_EXAMPLES.items():
        instance = instance.replace("{" + name + "}", value)
    for status, response in operation["responses"].items():
        media = response.get("content", {}).get(PROBLEM_MEDIA_TYPE)
        if status < "400" or media is None:
            continue
        for example in media.get("examples", {}).values():
            example["value"]["instance"] = instance


def _add_examples(
    schema: dict[str, Any], operation: dict[str, Any], path: str, method: str
) -> None:
    """Each JSON 2xx answer's example: the one written for it, else its schema's own."""
    components = schema["components"]["schemas"]
    for status, response in operation["responses"].items():
        media = response.get("content", {}).get("application/json")
        if not status.startswith("2") or media is None:
            continue
        written = RESPONSE_EXAMPLES.get((path, method, status))
        if written is not None:
            media["example"] = written()
            continue
        ref = media.get("schema", {}).get("$ref", "")
        component = components.get(ref.rsplit("/", 1)[-1], {})
        if "example" not in media and component.get("examples"):
            media["example"] = component["examples"][0]


def _problem_components(schema: dict[str, Any]) -> None:
    """Problem and ProblemError, which every problem response names; FastAPI's validation
    error models, which no response names any more."""
    components = schema["components"]["schemas"]
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
