"""The route class every API router uses: JSON bodies read with each member named once
(`service.json_body`), a body that names a member twice refused with 422 at the body; and
the query string held to what the endpoint takes: a parameter it does not take, or one it
takes once given twice, is 422 naming it (as an unknown body member is), never ignored or
decided by whichever came last. An action that takes no body (closing a batch, disabling a
connector) refuses one that says anything (`{}` says nothing), rather than acting as if
it had not been sent."""

import types
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Scope

from schemas.identity import redact_id_numbers
from schemas.problem import shown_name
from service.auth.principal import PRINCIPAL_STATE_KEY, Principal, Role
from service.auth.roles import ROLE_CHECKS, check_role
from service.errors import InvalidRequest
from service.json_body import load_json

API_PREFIX = "/v1/"
"""The API's routes (what the OpenAPI document describes as the API)."""
STRICT_QUERY_PREFIXES = (API_PREFIX, "/dashboard/")
"""Routes whose query strings are checked: the API's and the dashboard's data and actions
(the page itself, `/dashboard`, takes what a browser or a link adds). (`/metrics` and
`/healthz` are read by scrapers and load balancers, some of which add parameters of their
own.)"""
BODILESS_PREFIX = API_PREFIX
"""Routes without a body parameter that refuse a body: the API's (the dashboard's actions
read theirs themselves)."""


class JSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = load_json(await self.body())
        return self._json


class JSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        strict = self.path.startswith(STRICT_QUERY_PREFIXES)
        taken = query_parameters(self.dependant) if strict else None
        # An endpoint that reads its body as a stream itself (a batch upload) says so in
        # its OpenAPI extra; the others with no body parameter take none.
        bodiless = (
            self.path.startswith(BODILESS_PREFIX)
            and bool((self.methods or set()) & BODY_METHODS)
            and not self.dependant.body_params
            and "requestBody" not in (self.openapi_extra or {})
        )

        admitted = _admitted_roles(self.dependant)

        async def route(request: Request) -> Response:
            if taken is not None and request.scope.get("query_string"):
                try:
                    check_query(request.scope["query_string"], taken)
                except InvalidRequest:
                    # A caller this endpoint refuses learns that, not its parameters.
                    refuse_a_role_not_admitted(request, admitted)
                    raise
            request = JSONRequest(request.scope, request.receive)
            if bodiless and _may_carry_a_body(request):
                check_no_body(await request.body())
            return await handler(request)

        return route


def _admitted_roles(dependant: Dependant) -> frozenset[Role] | None:
    """The roles the endpoint's role check admits (None: it has none)."""
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call in ROLE_CHECKS:
            return ROLE_CHECKS[current.call][0]
        pending.extend(current.dependencies)
    return None


def refuse_a_role_not_admitted(request: Request, admitted: frozenset[Role] | None) -> None:
    """403 when the caller, as the authentication ahead of the route resolved it, has a
    role the endpoint does not admit."""
    principal = getattr(request.state, PRINCIPAL_STATE_KEY, None)
    if admitted is not None and isinstance(principal, Principal):
        check_role(principal, admitted)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _may_carry_a_body(request: Request) -> bool:
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


def check_no_body(body: bytes) -> None:
    """`InvalidRequest` at the body unless it says nothing: empty, white space, or `{}`."""
    if body.strip() in (b"", b"{}"):
        return
    raise InvalidRequest.at(["body"], "this endpoint takes no body: send none (or {})")


def check_query(query_string: bytes, taken: dict[str, bool]) -> None:
    """`InvalidRequest` at the first parameter `taken` does not name, or names as taken
    once (`taken`: each parameter's name, and whether it may be repeated) given twice."""
    seen: set[str] = set()
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name not in taken:
            accepted = ", ".join(sorted(taken)) or "none"
            # Named as sent, but never an ID number, and not at any length.
            shown = shown_name(redact_id_numbers(name))
            raise InvalidRequest.at(
                ["query", shown], f"is not a parameter of this endpoint (it takes: {accepted})"
            )
        if name in seen and not taken[name]:
            raise InvalidRequest.at(["query", name], "is given more than once; give it once")
        seen.add(name)


def query_parameters(dependant: Dependant) -> dict[str, bool]:
    """The query parameters an endpoint takes (its own and its dependencies', a query
    model's fields one by one), each with whether it may be repeated (a list)."""
    taken: dict[str, bool] = {}
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            model = _model(annotation)
            if model is None:
                taken[field.alias] = _repeated(annotation)
                continue
            for name, info in model.model_fields.items():
                taken[info.alias or name] = _repeated(info.annotation)
        pending.extend(current.dependencies)
    return taken


def _bare(annotation: Any) -> Any:
    """`annotation` without `Annotated[...]` and without `None` in a union of two."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return _bare(args[0])
    return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    bare = _bare(annotation)
    return bare if isinstance(bare, type) and issubclass(bare, BaseModel) else None


def _repeated(annotation: Any) -> bool:
    return get_origin(_bare(annotation)) in (list, tuple, set, frozenset)


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route answers at the request's path (a 405's `Allow`): Starlette's
    names only those of the first route matching the path, which for `/v1/verifications`
    left out GET. HEAD wherever GET is (`service.head`)."""
    found = []
    for method in METHODS:
        asked = {**scope, "method": method}
        if any(route.matches(asked)[0] is Match.FULL for route in routes):
            found.append(method)
    if "GET" in found:
        found.insert(1, "HEAD")
    return found


UNROUTED_PATH = "/.hedui-unrouted"
"""A path no route of hedui's (or of the sandbox's) has."""


async def build_routes(router: ASGIApp, prefixes: Sequence[str] = ("",)) -> None:
    """Have FastAPI build every route's state now rather than on the first request.

    FastAPI builds an included router's routes (their fields, validators and dependency
    plans) the first time a request is matched against it: 0.3 s of CPU on a quiet
    machine, seconds on a busy one, all paid by whichever request comes first (a load
    balancer's health check, a caseworker's submission). A request for a path no route has
    is matched against every route of every router, and is answered 404 by the router
    alone: `router` is the application's router, not the application, so no middleware
    sees it (nothing is logged, audited or counted). `prefixes`: mounted applications
    (the sandbox's), reached through their mount.
    """
    for prefix in prefixes:
        path = prefix + UNROUTED_PATH
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            "state": {},
        }
        await router(scope, _no_body, _discard)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(_message: Message) -> None:
    """The 404 of `build_routes`, which nobody asked for."""
