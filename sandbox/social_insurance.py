"""Social insurance (社保缴费): one person per form-encoded call, 金保工程 field codes.

`POST /social_insurance/query` with `aac002=<ID number>` (公民身份号码) answers
`{"code": 0, "data": {"aac002": …, "list": [{"aab004": employer, "aac008": "1"
(contributing) | "2" (suspended), "aic020": monthly contribution base in yuan}]}}`; an empty
list when the person has no record. Served by the `hedui-connector-social-insurance` plugin.
"""

from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response

from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response

SOURCE = "social_insurance"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/query"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Health checks are about nobody."""


def _error_body(status: int, message: str) -> bytes:
    return dump_json({"code": status, "message": message})


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b'{"code": 0, "data": {"aac002": ',
)

router = APIRouter(prefix=f"/{SOURCE}")


@router.post("/query")
async def query(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    values = form.get("aac002", [])
    if len(values) != 1 or not values[0].strip():
        return WIRE.error(400, "aac002 is required, once")
    id_number = values[0].strip()
    person = sandbox_state(request).people.lookup(id_number)
    insurance = person.social_insurance if person is not None else None
    rows = []
    if insurance is not None:
        rows.append(
            {
                "aab004": insurance.employer,
                "aac008": "1" if insurance.status == "contributing" else "2",
                "aic020": f"{insurance.monthly_base:.2f}",
            }
        )
    return json_response({"code": 0, "data": {"aac002": id_number, "list": rows}})


@router.get("/ping")
async def ping() -> Response:
    return json_response({"code": 0, "message": "ok"})
