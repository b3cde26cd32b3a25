"""Vehicles: XML queries for many people, traffic-police type codes, XML errors."""

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.sandbox.helpers import ALICE, BOB, Seed

XML = {"Content-Type": "application/xml"}


def query(*id_numbers: str) -> str:
    people = "".join(f'<Person idNumber="{id_number}"/>' for id_number in id_numbers)
    return f"<VehicleQuery>{people}</VehicleQuery>"


class TestQuery:
    async def test_answers_every_person_with_their_vehicles(
        self, client: httpx.AsyncClient, seed: Seed
    ) -> None:
        await seed(
            ALICE,
            vehicles=[
                {"plate": "云A12345", "type": "car", "registered_on": "2019-05-01", "value": 85000},
                {
                    "plate": "云A2345",
                    "type": "motorcycle",
                    "registered_on": "2020-01-02",
                    "value": "3500.5",
                },
            ],
        )
        await seed(BOB)

        response = await client.post("/vehicles/query", content=query(ALICE, BOB), headers=XML)

        assert response.status_code == 200
        assert response.headers["content-type"] == "application/xml"
        root = fromstring(response.content)
        assert root.tag == "VehicleQueryResult"
        assert root.get("code") == "0"
        alice, bob = root.findall("Person")
        assert alice.get("idNumber") == ALICE
        assert [vehicle.attrib for vehicle in alice.findall("Vehicle")] == [
            {"plate": "云A12345", "type": "K33", "registeredOn": "2019-05-01", "value": "85000.00"},
            {"plate": "云A2345", "type": "M22", "registeredOn": "2020-01-02", "value": "3500.50"},
        ]
        assert bob.get("idNumber") == BOB
        assert list(bob) == []  # no record: the person is listed without vehicles

    async def test_a_vehicle_without_a_valuation_has_no_value_attribute(
        self, client: httpx.AsyncClient, seed: Seed
    ) -> None:
        vehicle = {"plate": "云A1", "type": "car", "registered_on": "2019-05-01", "value": None}
        await seed(ALICE, vehicles=[vehicle])

        response = await client.post("/vehicles/query", content=query(ALICE), headers=XML)

        attributes = fromstring(response.content).find("Person/Vehicle").attrib
        assert attributes == {"plate": "云A1", "type": "K33", "registeredOn": "2019-05-01"}

    @pytest.mark.parametrize(
        ("kind", "code"),
        [("car", "K33"), ("motorcycle", "M22"), ("truck", "H11"), ("disability", "T01")],
    )
    async def test_maps_each_type_to_its_class_code(
        self, client: httpx.AsyncClient, seed: Seed, kind: str, code: str
    ) -> None:
        vehicle = {"plate": "云A1", "type": kind, "registered_on": "2019-05-01", "value": 1}
        await seed(ALICE, vehicles=[vehicle])

        response = await client.post("/vehicles/query", content=query(ALICE), headers=XML)

        assert fromstring(response.content).find("Person/Vehicle").get("type") == code

    async def test_an_invalid_id_number_has_no_record(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/vehicles/query", content=query("123"), headers=XML)

        person = fromstring(response.content).find("Person")
        assert person.get("idNumber") == "123"
        assert list(person) == []

    async def test_accepts_text_xml_with_a_charset(self, client: httpx.AsyncClient) -> None:
        headers = {"Content-Type": "text/xml; charset=utf-8"}

        response = await client.post("/vehicles/query", content=query(ALICE), headers=headers)

        assert response.status_code == 200


class TestErrors:
    @pytest.mark.parametrize(
        "body",
        [
            "<VehicleQuery><Person idNumber=",
            "<Other/>",
            "<VehicleQuery><Person/></VehicleQuery>",
            '<VehicleQuery><Person idNumber=""/></VehicleQuery>',
            '<!DOCTYPE VehicleQuery><VehicleQuery><Person idNumber="1"/></VehicleQuery>',
            # Entity expansion is refused, not evaluated.
            '<!DOCTYPE q [<!ENTITY a "x">]><VehicleQuery><Person idNumber="&a;"/></VehicleQuery>',
        ],
        ids=["malformed", "wrong-root", "no-id", "empty-id", "dtd", "entities"],
    )
    async def test_a_bad_document_is_an_xml_400(self, client: httpx.AsyncClient, body: str) -> None:
        response = await client.post("/vehicles/query", content=body, headers=XML)

        assert response.status_code == 400
        error = fromstring(response.content)
        assert (error.tag, error.get("code")) == ("Error", "E400")

    async def test_json_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/vehicles/query", json={"id_numbers": [ALICE]})

        assert response.status_code == 415
        assert fromstring(response.content).get("code") == "E415"


async def test_ping_answers_pong(client: httpx.AsyncClient) -> None:
    response = await client.get("/vehicles/ping")

    assert response.status_code == 200
    assert fromstring(response.content).tag == "Pong"
