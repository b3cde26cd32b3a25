"""The contract every connector answers to: each member asked about is accounted for once.

A partner answer that leaves a member out, or answers for one twice, is malformed: a
member left out is an answer we do not have, never "no record".
"""

import asyncio
from decimal import Decimal

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import MalformedResponse, account_for_members
from connectors.pensions import PensionsConnector
from connectors.vehicles import VehiclesConnector
from schemas.evidence import Evidence, PensionRecord
from tests.connectors.support import FOREIGN, A, B, fetch, household
from tests.connectors.test_vehicles import XML, person, result, vehicle
from tests.factories import make_id_number

PEOPLE = (A, B, *(make_id_number(sequence=n) for n in range(900, 903)))
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pension(seq: int) -> dict[str, object]:
    return {"seq": seq, "found": True, "status": "receiving", "monthly_amount": "800.00"}


class TestAccountForMembers:
    """The one check behind every connector, whatever its partner's format."""

    def test_each_member_once_is_complete(self) -> None:
        account_for_members(household(A, B), Evidence(answered=[B, A]))

    def test_lower_case_check_character_is_the_same_member(self) -> None:
        account_for_members(household(A), Evidence(answered=[A.lower()]))

    def test_a_member_left_out_is_malformed(self) -> None:
        with pytest.raises(MalformedResponse, match="leaves out 1 of 2 members"):
            account_for_members(household(A, B), Evidence(answered=[A]))

    def test_a_member_answered_twice_is_malformed(self) -> None:
        with pytest.raises(MalformedResponse, match="more than once"):
            account_for_members(household(A, B), Evidence(answered=[A, B, A]))

    def test_an_answer_for_someone_not_asked_is_malformed(self) -> None:
        with pytest.raises(MalformedResponse, match="not asked for"):
            account_for_members(household(A), Evidence(answered=[A, FOREIGN]))

    def test_a_record_for_someone_not_asked_is_malformed(self) -> None:
        record = PensionRecord(id_number=FOREIGN, status="receiving", monthly_amount=Decimal(1))
        with pytest.raises(MalformedResponse, match="not asked for"):
            account_for_members(household(A), Evidence(records=[record], answered=[A]))

    def test_the_message_names_nobody(self) -> None:
        with pytest.raises(MalformedResponse) as caught:
            account_for_members(household(A, B), Evidence(answered=[A, A]))
        assert A not in str(caught.value)
        assert B not in str(caught.value)


class TestAnyAcceptedAnswerAccountsForEveryMember:
    """Property: whatever a partner sends, an accepted answer spoke of each member once."""

    @PROPERTY
    @given(
        asked=st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4, unique=True),
        answer=st.lists(st.tuples(st.sampled_from((*PEOPLE, FOREIGN)), st.booleans()), max_size=6),
    )
    def test_vehicles(self, asked: list[str], answer: list[tuple[str, bool]]) -> None:
        """The answer lists any people, each with a car or none: gaps, repeats, strangers."""
        body = result(*(person(id_number, *[vehicle()] * car) for id_number, car in answer))

        def partner(router: respx.MockRouter) -> None:
            router.post("/query").respond(200, text=body, headers=XML)

        run = asyncio.run(fetch(VehiclesConnector(), household(*asked), partner))
        exactly_once = sorted(id_number for id_number, _ in answer) == sorted(asked)
        assert (run.error is None) == exactly_once, run.error
        if run.evidence is not None:
            assert sorted(run.evidence.answered) == sorted(asked)
            owners = {id_number for id_number, car in answer if car}
            assert {record.id_number for record in run.evidence.records} == owners
        else:
            assert isinstance(run.error, MalformedResponse)

    @PROPERTY
    @given(
        size=st.integers(min_value=1, max_value=5),
        seqs=st.lists(st.integers(min_value=0, max_value=6), max_size=7),
        batch_size=st.integers(min_value=1, max_value=3),
    )
    def test_pensions(self, size: int, seqs: list[int], batch_size: int) -> None:
        """Every batch is answered with results for `seqs`: gaps, repeats, unknown seqs."""
        asked = list(PEOPLE[:size])

        def answer(request: httpx.Request) -> httpx.Response:
            results = [pension(seq) for seq in seqs]
            return httpx.Response(200, json={"code": 0, "results": results})

        def partner(router: respx.MockRouter) -> None:
            router.post("/batch").mock(side_effect=answer)

        run = asyncio.run(
            fetch(PensionsConnector(), household(*asked), partner, batch_size=batch_size)
        )
        batches = [len(asked[start : start + batch_size]) for start in range(0, size, batch_size)]
        each_batch_whole = all(sorted(seqs) == list(range(1, count + 1)) for count in batches)
        assert (run.error is None) == each_batch_whole, run.error
        if run.evidence is not None:
            assert sorted(run.evidence.answered) == sorted(asked)
            assert len(run.evidence.records) == size
