"""Partners that misbehave in ways the sandbox cannot: never a false "eligible".

hedui runs for real (uvicorn, database of each dialect, the sandbox for the other five
agencies) with its vehicles connector pointed at a hostile agency this module serves.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    ClientFactory,
    LiveService,
    running_service,
    service_settings,
    serving,
)
from tests.e2e.hostile import Answer, HostilePartner, asked_people, vehicles_result
from tests.e2e.test_verification_flow import report_of, seed, submit
from tests.factories import make_id_number, member, verification_body

XML = "application/xml"


@pytest.fixture(scope="module")
async def hostile() -> AsyncIterator[tuple[HostilePartner, str]]:
    partner = HostilePartner()
    async with serving(partner, lifespan="off") as base_url:
        yield partner, base_url


@pytest.fixture(scope="module")
async def service(
    database_url: str,
    hostile: tuple[HostilePartner, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LiveService]:
    _, base_url = hostile
    settings = service_settings(
        database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        connectors={"vehicles": {"base_url": f"{base_url}/vehicles"}},
    )
    async with running_service(settings) as running:
        yield running


@pytest.fixture
async def caseworker(service: LiveService, api_client: ClientFactory) -> httpx.AsyncClient:
    client = await api_client()
    client.base_url = httpx.URL(service.base_url)
    return client


@pytest.fixture
def partner(hostile: tuple[HostilePartner, str]) -> HostilePartner:
    return hostile[0]


async def _verify_two_people(service: LiveService, caseworker: httpx.AsyncClient) -> dict:
    applicant, spouse = make_id_number("530103"), make_id_number("530103")
    async with httpx.AsyncClient(base_url=service.base_url) as plain:
        await seed(plain, applicant)  # nothing anywhere: eligible if every source answered
        await seed(plain, spouse)
    body = verification_body(
        [member(applicant, "张三", "applicant", 100), member(spouse, "李四", "spouse", 100)],
        region_code="530103",
    )
    response = await submit(caseworker, body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    return await report_of(caseworker, response.json()["id"])


def _vehicles(report: dict) -> dict:
    return next(source for source in report["sources"] if source["source"] == "vehicles")


class TestAnswerThatDoesNotAccountForEveryMember:
    async def test_control_a_whole_answer_is_eligible(
        self, service: LiveService, caseworker: httpx.AsyncClient, partner: HostilePartner
    ) -> None:
        """The same household, every person answered: proves the set-up can say eligible."""

        async def whole(path: str, body: bytes) -> Answer:
            return Answer(body=vehicles_result(*asked_people(body)), content_type=XML)

        partner.answer = whole
        report = await _verify_two_people(service, caseworker)
        assert report["complete"] is True
        assert report["recommendation"] == "eligible", report["findings"]

    async def test_a_person_left_out_is_review_not_eligible(
        self, service: LiveService, caseworker: httpx.AsyncClient, partner: HostilePartner
    ) -> None:
        async def drops_the_last(path: str, body: bytes) -> Answer:
            return Answer(body=vehicles_result(*asked_people(body)[:-1]), content_type=XML)

        partner.answer = drops_the_last
        report = await _verify_two_people(service, caseworker)
        assert report["complete"] is False
        assert report["recommendation"] == "review"
        vehicles = _vehicles(report)
        assert vehicles["status"] == "error"
        assert "leaves out 1 of 2 members" in vehicles["detail"]

    async def test_a_person_answered_twice_is_review_not_eligible(
        self, service: LiveService, caseworker: httpx.AsyncClient, partner: HostilePartner
    ) -> None:
        async def repeats_the_first(path: str, body: bytes) -> Answer:
            asked = asked_people(body)
            return Answer(body=vehicles_result(*asked, asked[0]), content_type=XML)

        partner.answer = repeats_the_first
        report = await _verify_two_people(service, caseworker)
        assert report["complete"] is False
        assert report["recommendation"] == "review"
        vehicles = _vehicles(report)
        assert vehicles["status"] == "error"
        assert "more than once" in vehicles["detail"]
