"""Individual income tax (个税): annual taxable income per person, JSON batches, fen.

Up to 20 people per call, each answered once and matched back by the ID number it echoes.
Callers may authenticate with OAuth 2.0 client credentials (`POST /tax/oauth/token`, HTTP
Basic `hedui-sandbox:sandbox-secret`): a request carrying a bearer token is refused with 401
unless the token is live. `DELETE /tax/oauth/tokens` revokes every token issued (as a
partner rotating them early would); `GET /tax/oauth/tokens` counts them.
"""

import base64
import binascii
import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response

from sandbox.state import sandbox_state
from sandbox.tokens import CLIENT_ID, CLIENT_SECRET, TOKEN_LIFE_S
from sandbox.wire import WireFormat, dump_json, json_response, read_json

MAX_BATCH = 20

SOURCE = "tax"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/income/batch"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Token requests are about nobody."""


def _error_body(status: int, message: str) -> bytes:
    return dump_json({"retCode": f"{status}000", "retMsg": message})


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b"<html><body><h1>502 Bad Gateway</h1>",
)


router = APIRouter(prefix=f"/{SOURCE}")


def _token_refused(request: Request) -> Response | None:
    """401 when the request carries a bearer token that is not live; None otherwise."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not sandbox_state(request).tokens.valid(token.strip()):
        return WIRE.error(401, "invalid or expired access token")
    return None


def _client_ok(header: str | None) -> bool:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        pair = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    client_id, _, secret = pair.partition(":")
    return secrets.compare_digest(client_id, CLIENT_ID) and secrets.compare_digest(
        secret, CLIENT_SECRET
    )


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """RFC 6749 §4.4: `grant_type=client_credentials`, client authenticated by HTTP Basic."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    if form.get("grant_type") != ["client_credentials"]:
        return json_response({"error": "unsupported_grant_type"}, 400)
    if not _client_ok(request.headers.get("authorization")):
        return json_response({"error": "invalid_client"}, 401)
    issued = sandbox_state(request).tokens.issue()
    return json_response(
        {"access_token": issued, "token_type": "Bearer", "expires_in": TOKEN_LIFE_S}
    )


@router.get("/oauth/tokens")
async def count_tokens(request: Request) -> Response:
    tokens = sandbox_state(request).tokens
    return json_response({"issued": tokens.issued, "live": tokens.live})


@router.delete("/oauth/tokens")
async def revoke_tokens(request: Request) -> Response:
    return json_response({"revoked": sandbox_state(request).tokens.revoke_all()})


@router.post("/income/batch")
async def batch(request: Request) -> Response:
    if (refused := _token_refused(request)) is not None:
        return refused
    body = await read_json(request)
    items = body.get("taxpayers") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("sfzh"), str) for item in items
    ):
        return WIRE.error(400, "taxpayers must be a list of {sfzh}")
    if len(items) > MAX_BATCH:
        return WIRE.error(400, f"at most {MAX_BATCH} taxpayers per batch")
    people = sandbox_state(request).people
    results: list[dict[str, object]] = []
    for item in items:
        id_number: str = item["sfzh"]
        person = people.lookup(id_number)
        tax = person.tax if person is not None else None
        if tax is None:
            results.append({"sfzh": id_number, "found": False})
            continue
        results.append(
            {
                "sfzh": id_number,
                "found": True,
                "taxYear": tax.year,
                # Integer fen, as the tax system keeps every amount.
                "taxableIncome": int(tax.annual_taxable_income * 100),
            }
        )
    return json_response({"retCode": "000000", "results": results})


@router.get("/health")
async def health(request: Request) -> Response:
    if (refused := _token_refused(request)) is not None:
        return refused
    return json_response({"retCode": "000000"})
