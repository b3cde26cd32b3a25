"""Public payroll (财政供养): a whole household per call, pinyin keys, only hits returned."""

from fastapi import APIRouter, Request, Response

from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response, read_json, string_list

SOURCE = "public_payroll"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/verify"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Health checks are about nobody."""


def _error_body(status: int, message: str) -> bytes:
    return dump_json({"flag": "0", "errmsg": message})


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b'{"flag":"1","rows":[{"sfzh":"',
)


router = APIRouter(prefix=f"/{SOURCE}")


@router.post("/verify")
async def verify(request: Request) -> Response:
    body = await read_json(request)
    id_numbers = string_list(body.get("sfzh_list")) if isinstance(body, dict) else None
    if id_numbers is None:
        return WIRE.error(400, "sfzh_list must be a list of strings")
    people = sandbox_state(request).people
    rows = []
    for id_number in id_numbers:
        person = people.lookup(id_number)
        payroll = person.public_payroll if person is not None else None
        if payroll is not None:
            rows.append(
                {
                    "sfzh": id_number,
                    "gzdw": payroll.employer,
                    "yfgz": f"{payroll.monthly_salary:.2f}",
                }
            )
    return json_response({"flag": "1", "rows": rows})


@router.get("/ping")
async def ping() -> Response:
    return json_response({"flag": "1"})
