"""Real-estate registration (不动产登记): many owners per call, answered page by page.

Page tokens are stateless: they carry the offset and a fingerprint of the ID list, so a
token only works with the body it was issued for and the agency keeps nothing per search.
"""

import hashlib
from base64 import urlsafe_b64decode, urlsafe_b64encode
from http import HTTPStatus

from fastapi import APIRouter, Request, Response

from sandbox.people import People
from sandbox.records import Property
from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response, read_json, string_list

DEFAULT_PAGE_SIZE = 2
MAX_PAGE_SIZE = 20

SOURCE = "real_estate"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/registrations/search"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Health checks are about nobody."""


def _body(status: int, code: str, message: str) -> bytes:
    return dump_json({"error": {"code": code, "message": message}})


def _error_body(status: int, message: str) -> bytes:
    return _body(status, HTTPStatus(status).phrase.lower().replace(" ", "_"), message)


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b'{"items": [{"owner_id_number": "',
)


def _error(status: int, code: str, message: str) -> Response:
    return Response(_body(status, code, message), status_code=status, media_type=WIRE.media_type)


def _fingerprint(id_numbers: list[str]) -> str:
    return hashlib.sha256("\x1f".join(id_numbers).encode()).hexdigest()[:16]


def _token(offset: int, fingerprint: str) -> str:
    return urlsafe_b64encode(f"{offset}.{fingerprint}".encode()).rstrip(b"=").decode()


def _offset(token: str, fingerprint: str) -> int | None:
    """The offset a token stands for, or None when it is not one issued for this body."""
    try:
        raw = urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset, issued_for = raw.split(".", 1)
        value = int(offset)
    except ValueError:  # bad base64, bad UTF-8, no dot, not a number
        return None
    return value if issued_for == fingerprint and value > 0 else None


def _holdings(people: People, id_number: str) -> list[Property]:
    person = people.lookup(id_number)
    return (person.real_estate or []) if person is not None else []


def _page_size(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        return None
    return size if 1 <= size <= MAX_PAGE_SIZE else None


router = APIRouter(prefix=f"/{SOURCE}")


@router.post("/registrations/search")
async def search(request: Request) -> Response:
    page_size = _page_size(request.query_params.get("page_size"))
    if page_size is None:
        return _error(400, "invalid_page_size", f"page_size must be 1 to {MAX_PAGE_SIZE}")
    body = await read_json(request)
    id_numbers = string_list(body.get("id_numbers")) if isinstance(body, dict) else None
    if id_numbers is None:
        return _error(400, "invalid_request", "id_numbers must be a list of strings")
    fingerprint = _fingerprint(id_numbers)
    offset = 0
    token = request.query_params.get("page_token")
    if token:
        found = _offset(token, fingerprint)
        if found is None:
            return _error(400, "invalid_page_token", "page_token does not match this search")
        offset = found
    people = sandbox_state(request).people
    items = [
        {
            "owner_id_number": id_number,
            "certificate": holding.certificate,
            "usage": holding.usage,
            "area_m2": float(holding.area_m2),
            "region_code": holding.region_code,
        }
        for id_number in id_numbers
        for holding in _holdings(people, id_number)
    ]
    end = offset + page_size
    next_token = _token(end, fingerprint) if end < len(items) else None
    return json_response({"items": items[offset:end], "next_page_token": next_token})


@router.get("/health")
async def health() -> Response:
    return json_response({"status": "up"})
