"""The problem answers an operation documents: each status it can really answer, as
`application/problem+json` with the Problem schema and, as examples, the problems it sends.

Routes name what they raise themselves (`responses=problems(DecisionExists(), ...)`); what
every `/v1` operation can answer (401 before it runs, 422 for a query parameter it does
not take, 503 when the database is away), what a body brings (408, 413, 415) and what a
role dependency refuses (403) are added to the document by `service.openapi`, from the
route and its dependencies.
"""

from typing import Any

from service.errors import PROBLEM_MEDIA_TYPE, HeduiError

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

DESCRIPTIONS: dict[int, str] = {
    400: "The client went away during the upload; what was committed stays",
    401: "No bearer token, or one that is unknown, revoked or expired",
    403: "The key's role or region may not do this",
    404: "No such resource in the caller's region",
    408: "The body did not arrive in time; nothing was stored, the connection is closed",
    409: "The resource's state does not allow this",
    413: "The body is larger than this service accepts; nothing of it was read",
    415: "The body was not sent as a media type this operation reads",
    422: "The request is invalid (`errors` names each field); nothing was stored",
    429: "This API key's per-minute quota is used up (`Retry-After`, `RateLimit`)",
    503: "The service cannot take this now; nothing was stored (`Retry-After`)",
}


def problems(*errors: HeduiError) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can raise `errors`: one response per status, each
    error an example of it (the description lists their problem types)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        add_problem(responses, error.problem().to_body())
    return responses


def add_problem(
    responses: dict[Any, dict[str, Any]], body: dict[str, Any], *, as_text: bool = False
) -> None:
    """Add the problem `body` as an example of its status's response in `responses` (keyed
    by status: ints for a route's `responses=`, text in a built document, `as_text`),
    creating the response if it is not there; an example of the same problem type and
    detail is not added twice."""
    status = body["status"]
    key = next((k for k in responses if str(k) == str(status)), str(status) if as_text else status)
    response = responses.setdefault(key, {})
    media = response.setdefault("content", {}).setdefault(PROBLEM_MEDIA_TYPE, {})
    media["schema"] = PROBLEM_REF
    examples: dict[str, Any] = media.setdefault("examples", {})
    if any(_same(example["value"], body) for example in examples.values()):
        return
    slug = body["type"].rsplit("/", 1)[-1]
    name, n = slug, 1
    while name in examples:
        n += 1
        name = f"{slug}-{n}"
    examples[name] = {"summary": body.get("detail") or body["title"], "value": body}
    types = sorted({f"`{example['value']['type']}`" for example in examples.values()})
    response["description"] = f"{DESCRIPTIONS.get(status, body['title'])}: {', '.join(types)}"


def _same(one: dict[str, Any], other: dict[str, Any]) -> bool:
    return one["type"] == other["type"] and one.get("detail") == other.get("detail")
