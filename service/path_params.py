"""What of a request's path may be repeated, in the audit trail or in a problem's
`instance`: a path parameter only when it has the shape of what the route names by it (a
UUID, or a connector's or problem's name); whatever else a caller put there (a name, an
amount, an ID number) is shown as `<invalid>`."""

import re

from starlette.requests import Request

INVALID = "<invalid>"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
"""A connector's name (`connectors.registry`), or a problem type's slug."""
NAMED = frozenset({"name", "slug"})
"""The path parameters that hold a name; every other one holds a UUID."""
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}")


def shown(param: str, value: object) -> str:
    """`value` of the path parameter `param` if it has the shape of an id the route issues,
    else `<invalid>`."""
    text = str(value)
    return text if (_NAME if param in NAMED else _UUID).fullmatch(text) else INVALID


def shown_path(request: Request) -> str:
    """The request's path with every value that is not an id of ours as `<invalid>`: the
    route's template with its parameters filled in, or, for a path no route matched, the
    path with every segment that is not a plain lower-case word so replaced."""
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str):
        params = request.path_params
        return _PARAM.sub(lambda match: shown(match[1], params.get(match[1], "")), template)
    return "/".join(
        segment if not segment or _NAME.fullmatch(segment) else INVALID
        for segment in request.url.path.split("/")
    )
