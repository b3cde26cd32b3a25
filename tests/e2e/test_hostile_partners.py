"""Partners that misbehave in ways the sandbox cannot: never a false "eligible".

hedui runs for real (uvicorn, database of each dialect, the sandbox for the other five
agencies) with its vehicles connector pointed at a hostile agency this module serves.
"""

import asyncio
import gc
import gzip
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    CLIENT_TLS,
    ClientFactory,
    LiveService,
    running_service,
    service_settings,
    serving,
)
from tests.e2e.hostile import Answer, HostilePartner, asked_people, streamed, vehicles_result
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
    async with httpx.AsyncClient(base_url=service.base_url, verify=CLIENT_TLS) as plain:
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


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@asynccontextmanager
async def _peak_rss_growth() -> AsyncIterator[list[int]]:
    """Samples this process's resident memory while inside; yields [peak growth] after."""
    gc.collect()
    baseline, peak, result = _rss_bytes(), 0, []

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _rss_bytes() - baseline)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        yield result
    finally:
        sampler.cancel()
        result.append(max(peak, _rss_bytes() - baseline))


class TestAnswerTooLarge:
    @pytest.mark.parametrize("declared", [False, True], ids=["streamed", "declared"])
    async def test_a_200_mb_answer_is_refused_in_bounded_memory(
        self,
        service: LiveService,
        caseworker: httpx.AsyncClient,
        partner: HostilePartner,
        declared: bool,
    ) -> None:
        """A valid-looking vehicles answer of 200 MB: an error well within the time budget."""
        total = 200 * 1024 * 1024
        person = (
            '<Person idNumber="530103199001010019"><Vehicle plate="云A12345" type="K33" '
            'registeredOn="2019-05-01" value="85000.00"/></Person>'
        ).encode()
        chunk = person * (64 * 1024 // len(person))

        async def flood(path: str, body: bytes) -> Answer:
            headers = {"Content-Length": str(total)} if declared else {}
            return Answer(body=streamed(chunk, total), content_type=XML, headers=headers)

        partner.answer = flood
        async with _peak_rss_growth() as growth:
            report = await _verify_two_people(service, caseworker)
        assert growth[0] < 50 * 1024 * 1024, f"resident memory grew by {growth[0]} bytes"
        assert report["complete"] is False
        assert report["recommendation"] == "review"
        vehicles = _vehicles(report)
        assert vehicles["status"] == "error"
        assert "response too large" in vehicles["detail"]


class TestAnswerFramedByItsLength:
    async def test_a_compressed_answer_of_declared_length_is_read_whole(
        self, service: LiveService, caseworker: httpx.AsyncClient, partner: HostilePartner
    ) -> None:
        """gzip with a Content-Length: inflated, not taken as the body itself."""

        async def compressed(path: str, body: bytes) -> Answer:
            packed = gzip.compress(vehicles_result(*asked_people(body)))
            return Answer(
                body=packed,
                content_type=XML,
                headers={"Content-Encoding": "gzip", "Content-Length": str(len(packed))},
            )

        partner.answer = compressed
        report = await _verify_two_people(service, caseworker)
        assert _vehicles(report)["status"] == "no_record"
        assert report["recommendation"] == "eligible", report["findings"]

    async def test_an_answer_shorter_than_its_declared_length_is_an_error(
        self, service: LiveService, caseworker: httpx.AsyncClient, partner: HostilePartner
    ) -> None:
        """The partner declares more than it sends and hangs up: whatever came is no
        answer, even when it parses (here: every person asked, complete XML)."""

        async def cut_short(path: str, body: bytes) -> Answer:
            whole = vehicles_result(*asked_people(body))

            async def then_hang_up() -> AsyncIterator[bytes]:
                yield whole

            return Answer(
                body=then_hang_up(),
                content_type=XML,
                headers={"Content-Length": str(len(whole) + 100)},
            )

        partner.answer = cut_short
        report = await _verify_two_people(service, caseworker)
        assert report["complete"] is False
        assert report["recommendation"] == "review"
        vehicles = _vehicles(report)
        assert vehicles["status"] == "error"
        assert "transport error" in vehicles["detail"]
