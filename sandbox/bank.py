"""Bank balance inquiry (银行存款查询): submit, then poll until the banks have answered.

Real inquiries go out to many banks and come back later (minutes, days); the sandbox
models that with inquiries held in memory that turn DONE some time after submission: the
bank fault's `processing_ms` at the time of submission, or, when that is unset, its delay
(`latency_ms`, or the `slow` default). Processing time runs on the sandbox's clock, which
`POST /clock` moves forward, so a five-minute bank can be tested in a second.
"""

from fastapi import APIRouter, Request, Response

from sandbox.people import People
from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, dump_json, json_response, read_json

SOURCE = "bank"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/inquiries"), ("GET", "/inquiries/"))
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`): the submit and every poll."""


def _error_body(status: int, message: str) -> bytes:
    return dump_json({"error": message})


WIRE = WireFormat(
    media_type="application/json",
    error_body=_error_body,
    garbage=b'{"inquiry_id": "inq_',
)


def _accounts(people: People, id_numbers: tuple[str, ...]) -> list[dict[str, str]]:
    accounts = []
    for id_number in id_numbers:
        person = people.lookup(id_number)
        for account in (person.bank_accounts if person is not None else None) or ():
            accounts.append(
                {
                    "id_number": id_number,
                    "bank": account.bank,
                    "account": account.account,
                    "balance": f"{account.balance:.2f}",
                }
            )
    return accounts


def _customer_ids(body: object) -> tuple[str, ...] | None:
    """The ID numbers of a submission, or None when it is not `{"customers": [...]}`."""
    customers = body.get("customers") if isinstance(body, dict) else None
    if not isinstance(customers, list):
        return None
    id_numbers = []
    for customer in customers:
        id_number = customer.get("id_number") if isinstance(customer, dict) else None
        if not isinstance(id_number, str):
            return None
        id_numbers.append(id_number)
    return tuple(id_numbers)


router = APIRouter(prefix=f"/{SOURCE}")


@router.post("/inquiries")
async def submit(request: Request) -> Response:
    id_numbers = _customer_ids(await read_json(request))
    if id_numbers is None:
        return WIRE.error(400, "customers must be a list of {id_number}")
    state = sandbox_state(request)
    # A slow bank is slow to answer *and* slow to process, unless processing is set apart.
    inquiry_id = state.inquiries.submit(id_numbers, state.faults.get(SOURCE).processing_s)
    return json_response({"inquiry_id": inquiry_id, "state": "PROCESSING"}, status=202)


@router.get("/inquiries/{inquiry_id}")
async def poll(request: Request, inquiry_id: str) -> Response:
    state = sandbox_state(request)
    found = state.inquiries.get(inquiry_id)
    if found is None:
        return WIRE.error(404, "unknown inquiry")
    inquiry, done = found
    if not done:
        return json_response({"inquiry_id": inquiry_id, "state": "PROCESSING"})
    accounts = _accounts(state.people, inquiry.id_numbers)
    return json_response({"inquiry_id": inquiry_id, "state": "DONE", "accounts": accounts})


@router.get("/health")
async def health() -> Response:
    return json_response({"state": "UP"})
