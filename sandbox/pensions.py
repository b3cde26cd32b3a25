"""Pensions (社保): a JSON batch of up to 50 people, matched back by `seq`."""

from fastapi import APIRouter, Request, Response

from sandbox.people import People
from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response, read_json

MAX_BATCH = 50

SOURCE = "pensions"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/batch"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Health checks are about nobody."""


def _error_body(status: int, message: str) -> bytes:
    return dump_json({"code": 5000 if status >= 500 else 4000, "message": message})


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b'{"code": 0, "results": [{"seq": 1, "found": tru',
)


def _result(people: People, seq: int | str, id_number: str) -> dict[str, object]:
    person = people.lookup(id_number)
    pension = person.pension if person is not None else None
    if pension is None:
        return {"seq": seq, "found": False}
    return {
        "seq": seq,
        "found": True,
        "status": pension.status,
        "monthly_amount": f"{pension.monthly_amount:.2f}",
    }


router = APIRouter(prefix=f"/{SOURCE}")


@router.post("/batch")
async def batch(request: Request) -> Response:
    body = await read_json(request)
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list):
        return WIRE.error(400, "requests must be a list")
    if len(requests) > MAX_BATCH:
        return json_response({"code": 4001, "message": "batch too large"}, status=400)
    people = sandbox_state(request).people
    results = []
    for item in requests:
        seq = item.get("seq") if isinstance(item, dict) else None
        sfzh = item.get("sfzh") if isinstance(item, dict) else None
        if isinstance(seq, bool) or not isinstance(seq, int | str) or not isinstance(sfzh, str):
            return WIRE.error(400, "every request needs a seq and an sfzh")
        results.append(_result(people, seq, sfzh))
    return json_response({"code": 0, "results": results})


@router.get("/health")
async def health() -> Response:
    return json_response({"code": 0})
