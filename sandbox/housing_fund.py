"""Housing provident fund (住房公积金): one person per form-encoded call, amounts in fen."""

from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response

from sandbox.openapi import request_body
from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response, media_type

_FORM = "application/x-www-form-urlencoded"
_STATUS_CODES = {"active": "01", "closed": "02"}

SOURCE = "housing_fund"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/account/query"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Health checks are about nobody."""


def _error_body(status: int, message: str) -> bytes:
    return dump_json({"ret": "9999", "msg": message})


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    # Gateways in front of such systems answer maintenance pages with a 200.
    garbage="<html><body><h1>系统维护中</h1></body></html>".encode(),
)


def fen(amount: Decimal) -> int:
    """Yuan to integer fen, the unit this agency stores money in."""
    return int(amount.scaleb(2).to_integral_value(rounding=ROUND_HALF_UP))


router = APIRouter(prefix=f"/{SOURCE}")


QUERY_FORM = {
    "type": "object",
    "properties": {"zjhm": {"type": "string", "description": "证件号码: the person's ID number"}},
    "required": ["zjhm"],
}


@router.post(
    "/account/query",
    summary="One person's housing fund account (form in, JSON out, amounts in fen)",
    openapi_extra=request_body(_FORM, {"zjhm": "530102199001011231"}, QUERY_FORM),
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "ret": "0000",
                        "msg": "success",
                        "data": {"zhzt": "01", "ye": 1250000, "yjce": 80000},
                    }
                }
            }
        }
    },
)
async def account_query(request: Request) -> Response:
    if media_type(request) != _FORM:
        return WIRE.error(415, f"expected {_FORM}")
    try:
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return WIRE.error(400, "form must be UTF-8")
    zjhm = form.get("zjhm", [""])[0].strip()
    if not zjhm:
        return WIRE.error(400, "zjhm is required")
    person = sandbox_state(request).people.lookup(zjhm)
    account = person.housing_fund if person is not None else None
    if account is None:
        return json_response({"ret": "0404", "msg": "no account", "data": None})
    data = {
        "zhzt": _STATUS_CODES[account.status],
        "ye": fen(account.balance),
        "yjce": fen(account.monthly_deposit),
    }
    return json_response({"ret": "0000", "msg": "success", "data": data})


@router.get("/status")
async def status() -> Response:
    return json_response({"ret": "0000"})
