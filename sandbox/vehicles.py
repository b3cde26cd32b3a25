"""Vehicles (公安交管): XML in, XML out, many people per call, traffic-police type codes."""

from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from fastapi import APIRouter, Request, Response

from sandbox.openapi import XMLResponse, request_body
from sandbox.people import People
from sandbox.state import sandbox_state
from sandbox.wire import WireFormat, media_type

_PROLOG = '<?xml version="1.0" encoding="UTF-8"?>'
_XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})

TYPE_CODES = {"car": "K33", "motorcycle": "M22", "truck": "H11", "disability": "T01"}
"""Traffic-police vehicle class codes for the types the sandbox knows."""

SOURCE = "vehicles"
"""The source name: the agency's root path and its key in `/faults`."""
QUERIES = (("POST", "/query"),)
"""The calls about a household (method, start of the path below the root): the ones
that must say why they are asked (`sandbox/consent.py`). Health checks are about nobody."""


def _error_body(status: int, message: str) -> bytes:
    return f'{_PROLOG}<Error code="E{status}">{escape(message)}</Error>'.encode()


WIRE = WireFormat(
    media_type="application/xml",
    error_body=_error_body,
    # Cut off inside an attribute value, the way a proxy truncates a body mid-stream.
    garbage=f'{_PROLOG}<VehicleQueryResult code="0"><Person idNumber="'.encode(),
)


def _person_xml(people: People, id_number: str) -> str:
    person = people.lookup(id_number)
    owner = quoteattr(id_number)
    if person is None or not person.vehicles:
        return f"<Person idNumber={owner}/>"
    vehicles = "".join(
        f'<Vehicle plate={quoteattr(vehicle.plate)} type="{TYPE_CODES[vehicle.type]}"'
        f' registeredOn="{vehicle.registered_on.isoformat()}"'
        # No valuation on record: the attribute is left out, as the agency does.
        + (f' value="{vehicle.value:.2f}"' if vehicle.value is not None else "")
        + "/>"
        for vehicle in person.vehicles
    )
    return f"<Person idNumber={owner}>{vehicles}</Person>"


router = APIRouter(prefix=f"/{SOURCE}")


QUERY_EXAMPLE = (
    f"{_PROLOG}<VehicleQuery>"
    '<Person idNumber="530102199001011231"/><Person idNumber="530102199001012031"/>'
    "</VehicleQuery>"
)
ANSWER_EXAMPLE = (
    f'{_PROLOG}<VehicleQueryResult code="0"><Person idNumber="530102199001011231">'
    '<Vehicle plate="云A12345" type="K33" registeredOn="2019-05-01" value="85000.00"/>'
    '</Person><Person idNumber="530102199001012031"/></VehicleQueryResult>'
)


@router.post(
    "/query",
    response_class=XMLResponse,
    summary="Vehicles registered to each person (XML in, XML out)",
    openapi_extra=request_body("application/xml", QUERY_EXAMPLE),
    responses={200: {"content": {"application/xml": {"example": ANSWER_EXAMPLE}}}},
)
async def query(request: Request) -> Response:
    if media_type(request) not in _XML_MEDIA_TYPES:
        return WIRE.error(415, "expected application/xml")
    try:
        # No DTDs at all: a partner has no business receiving entity tricks.
        root = fromstring(await request.body(), forbid_dtd=True)
    except (ParseError, DefusedXmlException):
        return WIRE.error(400, "malformed XML")
    if root.tag != "VehicleQuery":
        return WIRE.error(400, "expected a VehicleQuery document")
    id_numbers = [person.get("idNumber") for person in root.findall("Person")]
    if not all(id_numbers):
        return WIRE.error(400, "every Person needs an idNumber")
    people = sandbox_state(request).people
    body = "".join(_person_xml(people, id_number) for id_number in id_numbers if id_number)
    return Response(
        f'{_PROLOG}<VehicleQueryResult code="0">{body}</VehicleQueryResult>'.encode(),
        media_type=WIRE.media_type,
    )


@router.get(
    "/ping",
    response_class=XMLResponse,
    responses={200: {"content": {"application/xml": {"example": f"{_PROLOG}<Pong/>"}}}},
)
async def ping() -> Response:
    return Response(f"{_PROLOG}<Pong/>".encode(), media_type=WIRE.media_type)
