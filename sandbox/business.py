"""Business registration (工商): companies a person represents or holds shares in, paged.

Many people per call; the page number and size travel in the query string, the ID numbers
in the body. Only people with a registration appear; registered capital is in yuan.
"""

from fastapi import APIRouter, Request, Response

from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response, read_json, string_list

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
MAX_PEOPLE = 100

SOURCE = "business"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/persons/search"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Health checks are about nobody."""


def _body(code: str, message: str) -> bytes:
    return dump_json({"success": False, "errorCode": code, "errorMsg": message})


def _error_body(status: int, message: str) -> bytes:
    return _body(f"E{status}", message)


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b'{"success": true, "result": {"page": 1, "records": [{"personId": "',
)


def _error(code: str, message: str) -> Response:
    return Response(_body(code, message), status_code=400, media_type=WIRE.media_type)


def _positive(raw: str | None, default: int, limit: int) -> int | None:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 1 <= value <= limit else None


router = APIRouter(prefix=f"/{SOURCE}")


@router.post("/persons/search")
async def search(request: Request) -> Response:
    page = _positive(request.query_params.get("page"), 1, 10_000)
    size = _positive(request.query_params.get("size"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if page is None or size is None:
        return _error("E4001", f"page must be >= 1 and size 1 to {MAX_PAGE_SIZE}")
    body = await read_json(request)
    id_numbers = string_list(body.get("idNumbers")) if isinstance(body, dict) else None
    if id_numbers is None:
        return _error("E4000", "idNumbers must be a list of strings")
    if len(id_numbers) > MAX_PEOPLE:
        return _error("E4002", f"at most {MAX_PEOPLE} idNumbers per search")
    people = sandbox_state(request).people
    records = []
    for id_number in id_numbers:
        person = people.lookup(id_number)
        for role in (person.business or []) if person is not None else []:
            records.append(
                {
                    "personId": id_number,
                    "entName": role.company,
                    "uniscid": role.credit_code,
                    "role": role.role,
                    "regCap": f"{role.registered_capital:.2f}",
                    "shareRatio": None if role.share_ratio is None else f"{role.share_ratio}",
                }
            )
    pages = max(1, -(-len(records) // size))
    start = (page - 1) * size
    return json_response(
        {
            "success": True,
            "result": {
                "page": page,
                "pages": pages,
                "total": len(records),
                "records": records[start : start + size],
            },
        }
    )


@router.get("/health")
async def health() -> Response:
    return json_response({"success": True})
