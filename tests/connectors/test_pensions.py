"""社保 pensions connector against the JSON batch format of docs/partners.md."""

import asyncio
import json
from decimal import Decimal

import httpx
import respx

from connectors.base import MalformedResponse, PartnerRejected
from connectors.pensions import BATCH_LIMIT, PensionsConnector
from connectors.testing import ConnectorConformance, ConnectorTestScenario, PartnerSetup
from schemas.evidence import PensionRecord
from tests.connectors.support import A, B, fetch, household
from tests.factories import make_id_number

Known = dict[str, tuple[str, str]]  # ID number -> (status, monthly_amount)


def partner(known: Known) -> PartnerSetup:
    """A pensions agency that knows `known` and answers each batch by seq."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["requests"]
        if len(asked) > BATCH_LIMIT:
            return httpx.Response(400, json={"code": 4001, "message": "batch too large"})
        results = [
            {
                "seq": item["seq"],
                "found": True,
                "status": known[item["sfzh"]][0],
                "monthly_amount": known[item["sfzh"]][1],
            }
            if item["sfzh"] in known
            else {"seq": item["seq"], "found": False}
            for item in asked
        ]
        return httpx.Response(200, json={"code": 0, "results": results})

    return lambda router: router.post("/batch").mock(side_effect=answer)


def raw(body: object) -> PartnerSetup:
    return lambda router: router.post("/batch").respond(200, json=body)


class TestPensions(ConnectorConformance):
    connector = PensionsConnector()
    scenarios = (
        ConnectorTestScenario(
            id="one receiving, one unknown",
            household=household(A, B),
            partner=partner({A: ("receiving", "1200.00")}),
            expected_records=(
                PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("1200.00")),
            ),
            expected_calls=1,
        ),
        ConnectorTestScenario(
            id="contributing and none are records too",
            household=household(A, B),
            partner=partner({A: ("contributing", "0.00"), B: ("none", "0")}),
            expected_records=(
                PensionRecord(id_number=A, status="contributing", monthly_amount=Decimal("0")),
                PensionRecord(id_number=B, status="none", monthly_amount=Decimal("0")),
            ),
        ),
        ConnectorTestScenario(id="no record", household=household(A, B), partner=partner({})),
        ConnectorTestScenario(
            id="seq that was not asked",
            household=household(A),
            partner=raw({"code": 0, "results": [{"seq": 2, "found": False}]}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="found without amount",
            household=household(A),
            partner=raw({"code": 0, "results": [{"seq": 1, "found": True, "status": "receiving"}]}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="not found, with a pension",
            household=household(A),
            partner=raw(
                {
                    "code": 0,
                    "results": [
                        {"seq": 1, "found": False, "status": "receiving", "monthly_amount": "9000"}
                    ],
                }
            ),
            expected_error=MalformedResponse,
        ),
        *(
            ConnectorTestScenario(
                id=f"amount written {written!r}",
                household=household(A),
                partner=partner({A: ("receiving", written)}),
                expected_error=MalformedResponse,
            )
            for written in ("\uff13\uff10\uff10", " 300", "1e2", "1_000", "300 ", "")
        ),
        ConnectorTestScenario(
            id="an amount written with an exponent",
            household=household(A),
            partner=lambda router: router.post("/batch").respond(
                200,
                content=b'{"code": 0, "results": [{"seq": 1, "found": true,'
                b' "status": "receiving", "monthly_amount": 3E+2}]}',
            ),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="a plain JSON number is an amount",
            household=household(A),
            partner=lambda router: router.post("/batch").respond(
                200,
                content=b'{"code": 0, "results": [{"seq": 1, "found": true,'
                b' "status": "receiving", "monthly_amount": 300.5}]}',
            ),
            expected_records=(
                PensionRecord(id_number=A, status="receiving", monthly_amount=Decimal("300.50")),
            ),
        ),
        ConnectorTestScenario(
            id="unknown status",
            household=household(A),
            partner=raw(
                {
                    "code": 0,
                    "results": [
                        {"seq": 1, "found": True, "status": "retired", "monthly_amount": "1.00"}
                    ],
                }
            ),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="negative amount",
            household=household(A),
            partner=partner({A: ("receiving", "-5.00")}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="code not 0",
            household=household(A),
            partner=raw({"code": 5000, "results": []}),
            expected_error=MalformedResponse,
        ),
    )

    omits_a_member = ConnectorTestScenario(
        id="a seq missing from the batch answer",
        household=household(A, B),
        partner=raw({"code": 0, "results": [{"seq": 2, "found": False}]}),
        expected_error=MalformedResponse,
    )
    duplicates_a_member = ConnectorTestScenario(
        id="a seq answered twice",
        household=household(A, B),
        partner=raw(
            {
                "code": 0,
                "results": [
                    {"seq": 1, "found": False},
                    {"seq": 2, "found": False},
                    {"seq": 1, "found": True, "status": "receiving", "monthly_amount": "900.00"},
                ],
            }
        ),
        expected_error=MalformedResponse,
    )

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/health").respond(200, json={"code": 0})


class TestChunking:
    async def test_sixty_people_take_two_calls_of_fifty_and_ten(self) -> None:
        people = [make_id_number(sequence=n) for n in range(60)]
        known = {id_number: ("receiving", f"{n}.50") for n, id_number in enumerate(people)}
        run = await fetch(PensionsConnector(), household(*people), partner(known))
        assert run.error is None, run.error
        sizes = sorted(len(json.loads(r.content)["requests"]) for r in run.partner.requests)
        assert sizes == [10, 50]
        assert run.evidence is not None
        assert [r.id_number for r in run.evidence.records] == people
        assert run.evidence.records[59] == PensionRecord(
            id_number=people[59], status="receiving", monthly_amount=Decimal("59.50")
        )

    async def test_chunks_are_asked_concurrently(self) -> None:
        people = [make_id_number(sequence=n) for n in range(60)]
        both_arrived = asyncio.Event()
        arrived = 0

        async def answer(request: httpx.Request) -> httpx.Response:
            nonlocal arrived
            arrived += 1
            if arrived == 2:
                both_arrived.set()
            # Sequential calls would wait here forever (until the test's budget ends it).
            await asyncio.wait_for(both_arrived.wait(), timeout=1)
            asked = json.loads(request.content)["requests"]
            return httpx.Response(
                200, json={"code": 0, "results": [{"seq": i["seq"], "found": False} for i in asked]}
            )

        run = await fetch(
            PensionsConnector(),
            household(*people),
            lambda router: router.post("/batch").mock(side_effect=answer),
        )
        assert run.error is None, run.error
        assert run.attempts == 2

    async def test_retried_chunk_counts_its_attempts(self) -> None:
        people = [make_id_number(sequence=n) for n in range(60)]
        calls = 0

        def flaky(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                return httpx.Response(503, json={"code": 5000, "message": "busy"})
            asked = json.loads(request.content)["requests"]
            return httpx.Response(
                200, json={"code": 0, "results": [{"seq": i["seq"], "found": False} for i in asked]}
            )

        run = await fetch(
            PensionsConnector(),
            household(*people),
            lambda router: router.post("/batch").mock(side_effect=flaky),
        )
        assert run.error is None, run.error
        assert run.attempts == 3  # two chunks, one of them twice

    async def test_smaller_batch_size_is_honoured(self) -> None:
        people = [make_id_number(sequence=n) for n in range(5)]
        run = await fetch(PensionsConnector(), household(*people), partner({}), batch_size=2)
        assert run.attempts == 3

    async def test_batch_too_large_is_rejected_not_retried(self) -> None:
        run = await fetch(
            PensionsConnector(),
            household(A),
            lambda router: router.post("/batch").respond(
                400, json={"code": 4001, "message": "batch too large"}
            ),
        )
        assert isinstance(run.error, PartnerRejected)
        assert str(run.error) == "HTTP 400 (partner code 4001)"
        assert run.attempts == 1


class TestWireFormat:
    async def test_request_names_people_by_seq_and_sfzh(self) -> None:
        run = await fetch(PensionsConnector(), household(A, B), partner({}))
        (request,) = run.partner.requests
        assert json.loads(request.content) == {
            "requests": [{"seq": 1, "sfzh": A}, {"seq": 2, "sfzh": B}]
        }

    async def test_amount_as_json_number_stays_exact(self) -> None:
        body = (
            b'{"code": 0, "results": [{"seq": 1, "found": true, "status": "receiving", '
            b'"monthly_amount": 1234.10}]}'
        )
        run = await fetch(
            PensionsConnector(),
            household(A),
            lambda router: router.post("/batch").respond(200, content=body),
        )
        assert run.evidence is not None
        (record,) = run.evidence.records
        assert isinstance(record, PensionRecord)
        assert str(record.monthly_amount) == "1234.10"
