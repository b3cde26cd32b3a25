"""公安交管 vehicles connector against the XML wire format of docs/partners.md."""

from datetime import date
from decimal import Decimal
from xml.etree.ElementTree import Element, SubElement, tostring

import pytest
import respx
from defusedxml.ElementTree import fromstring
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import MalformedResponse
from connectors.testing import ConnectorConformance, ConnectorTestScenario, PartnerSetup
from connectors.vehicles import VehiclesConnector, _query_body, vehicle_type
from schemas.evidence import VehicleRecord
from tests.connectors.support import FOREIGN, A, B, fetch, household

XML = {"Content-Type": "application/xml"}


def vehicle(
    plate: str = "云A12345",
    code: str = "K33",
    value: str = "85000.00",
    registered: str = "2019-05-01",
) -> str:
    return f'<Vehicle plate="{plate}" type="{code}" registeredOn="{registered}" value="{value}"/>'


def person(id_number: str, *vehicles: str) -> str:
    return f'<Person idNumber="{id_number}">{"".join(vehicles)}</Person>'


def result(*people: str, code: str = "0") -> str:
    return f'<VehicleQueryResult code="{code}">{"".join(people)}</VehicleQueryResult>'


def answer(body: str, status: int = 200) -> PartnerSetup:
    return lambda router: router.post("/query").respond(status, text=body, headers=XML)


CAR = VehicleRecord(
    id_number=A,
    plate="云A12345",
    type="car",
    registered_on=date(2019, 5, 1),
    value=Decimal("85000.00"),
)


class TestVehicles(ConnectorConformance):
    connector = VehiclesConnector()
    scenarios = (
        ConnectorTestScenario(
            id="one car among two people",
            household=household(A, B),
            partner=answer(result(person(A, vehicle()), person(B))),
            expected_records=(CAR,),
            expected_calls=1,
        ),
        ConnectorTestScenario(
            id="a car each",
            household=household(A, B),
            partner=answer(result(person(A, vehicle()), person(B, vehicle(plate="云B1")))),
            expected_records=(CAR, CAR.model_copy(update={"id_number": B, "plate": "云B1"})),
        ),
        ConnectorTestScenario(
            id="no vehicles",
            household=household(A, B),
            partner=answer(result(person(A), person(B))),
        ),
        ConnectorTestScenario(
            id="everyone left out of the answer",
            household=household(A, B),
            partner=answer(result()),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="foreign ID number",
            household=household(A),
            partner=answer(result(person(FOREIGN, vehicle()))),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="result code not 0",
            household=household(A),
            partner=answer(result(person(A), code="1")),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="vehicle without value is a vehicle of unknown value",
            household=household(A),
            partner=answer(result(person(A, '<Vehicle plate="云A1" type="K33"/>'))),
            expected_records=(VehicleRecord(id_number=A, plate="云A1", type="car", value=None),),
        ),
        ConnectorTestScenario(
            id="value not a number",
            household=household(A),
            partner=answer(result(person(A, vehicle(value="lots")))),
            expected_error=MalformedResponse,
        ),
    )

    omits_a_member = ConnectorTestScenario(
        id="the car owner left out",
        household=household(A, B),
        partner=answer(result(person(B))),
        expected_error=MalformedResponse,
    )
    duplicates_a_member = ConnectorTestScenario(
        id="one person twice",
        household=household(A, B),
        partner=answer(result(person(A), person(B), person(A, vehicle()))),
        expected_error=MalformedResponse,
    )

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/ping").respond(200, text="<Pong/>", headers=XML)


class TestVehicleTypes:
    @pytest.mark.parametrize(
        ("code", "kind"),
        [
            ("K33", "car"),
            ("M22", "motorcycle"),
            ("H11", "truck"),
            ("T01", "disability"),
            ("K11", "other"),
            ("", "other"),
        ],
    )
    def test_traffic_police_code(self, code: str, kind: str) -> None:
        assert vehicle_type(code) == kind

    async def test_every_vehicle_of_every_person_becomes_a_record(self) -> None:
        body = result(
            person(A, vehicle(plate="云A1", code="M22"), vehicle(plate="云A2", code="T01")),
            person(B, vehicle(plate="云B1", code="H11", value="120000.5")),
        )
        run = await fetch(VehiclesConnector(), household(A, B), answer(body))
        assert run.evidence is not None
        records = [r for r in run.evidence.records if isinstance(r, VehicleRecord)]
        assert [(r.id_number, r.plate, r.type) for r in records] == [
            (A, "云A1", "motorcycle"),
            (A, "云A2", "disability"),
            (B, "云B1", "truck"),
        ]
        assert len(records) == len(run.evidence.records)
        assert records[2].value == Decimal("120000.5")
        assert records[2].model_dump(mode="json")["value"] == "120000.50"


class TestQuery:
    async def test_sends_every_member_in_one_xml_body(self) -> None:
        sent = []

        def setup(router: respx.MockRouter) -> None:
            body = result(person(A), person(B))
            route = router.post("/query").respond(200, text=body, headers=XML)
            sent.append(route)

        run = await fetch(VehiclesConnector(), household(A, B), setup)
        assert run.error is None
        (request,) = run.partner.requests
        assert request.headers["Content-Type"] == "application/xml"
        root = fromstring(request.content)
        assert root.tag == "VehicleQuery"
        assert [p.get("idNumber") for p in root.findall("Person")] == [A, B]

    async def test_lower_case_check_character_is_the_same_person(self) -> None:
        body = result(person(A.lower(), vehicle()))
        run = await fetch(VehiclesConnector(), household(A), answer(body))
        assert run.evidence is not None
        assert run.evidence.records == [CAR]


class TestHostileXml:
    async def test_entity_expansion_is_refused(self) -> None:
        bomb = (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<VehicleQueryResult code="0"><Person idNumber="&b;"/></VehicleQueryResult>'
        )
        run = await fetch(VehiclesConnector(), household(A), answer(bomb))
        assert isinstance(run.error, MalformedResponse)

    @pytest.mark.parametrize(
        "body",
        [
            result(person(A), f"<Wrap>{person(B, vehicle())}</Wrap>"),
            result(person(A, f"<Vehicles>{vehicle()}</Vehicles>"), person(B)),
            result(person(A, vehicle().replace("<Vehicle", "<vehicle")), person(B)),
            result(person(A), person(B), vehicle()),
            result(person(A, vehicle().replace("/>", f">{vehicle()}</Vehicle>")), person(B)),
        ],
        ids=["person-wrapped", "vehicles-wrapped", "lower-case-tag", "vehicle-at-root", "nested"],
    )
    async def test_a_vehicle_where_the_format_has_none_is_malformed(self, body: str) -> None:
        """Never skipped: a car written in a place the format does not have would be "no
        vehicle", and the household's report complete without it."""
        run = await fetch(VehiclesConnector(), household(A, B), answer(body))
        assert isinstance(run.error, MalformedResponse)
        assert run.evidence is None

    async def test_error_body_quotes_only_the_partner_code(self) -> None:
        body = f'<Error code="E500">查询 {A} 张三 失败</Error>'
        run = await fetch(VehiclesConnector(), household(A), answer(body, status=500))
        assert str(run.error) == "HTTP 500 (partner code E500)"


@given(st.lists(st.text(), max_size=4))
def test_the_query_body_is_the_one_elementtree_writes(id_numbers: list[str]) -> None:
    root = Element("VehicleQuery")
    for id_number in id_numbers:
        SubElement(root, "Person", idNumber=id_number)
    assert _query_body(id_numbers) == tostring(root, encoding="utf-8")
