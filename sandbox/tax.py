"""Individual income tax (个税): annual taxable income per person, JSON batches, fen.

Up to 20 people per call, each answered once and matched back by the ID number it echoes.
"""

from fastapi import APIRouter, Request, Response

from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response, read_json

MAX_BATCH = 20

SOURCE = "tax"
"""The source name: the agency's root path and its key in `/faults`."""


def _error_body(status: int, message: str) -> bytes:
    return dump_json({"retCode": f"{status}000", "retMsg": message})


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b"<html><body><h1>502 Bad Gateway</h1>",
)


router = APIRouter(prefix=f"/{SOURCE}")


@router.post("/income/batch")
async def batch(request: Request) -> Response:
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
async def health() -> Response:
    return json_response({"retCode": "000000"})
