"""银行存款查询 bank connector: asynchronous submit-then-poll, as in docs/partners.md."""

import json
import time
from decimal import Decimal
from itertools import islice
from typing import Any

import httpx
import respx

from connectors.bank import BankConnector, poll_delays
from connectors.base import MalformedResponse, PartnerRejected, PartnerTimeout
from connectors.testing import ConnectorTestScenario, ParkingConformance, PartnerSetup
from schemas.evidence import BankAccountRecord
from tests.connectors.support import FOREIGN, A, B, fetch, household

INQUIRY = "inq_7f3a"
PROCESSING = {"inquiry_id": INQUIRY, "state": "PROCESSING"}


def done(*accounts: dict[str, Any]) -> dict[str, Any]:
    return {"inquiry_id": INQUIRY, "state": "DONE", "accounts": list(accounts)}


def account(
    id_number: str, number: str = "6222020200112233", balance: Any = "3000.00"
) -> dict[str, Any]:
    return {"id_number": id_number, "bank": "中国工商银行", "account": number, "balance": balance}


def bank(*polls: dict[str, Any], submitted: dict[str, Any] = PROCESSING) -> PartnerSetup:
    """Accept the inquiry, then answer successive polls with `polls` (the last one repeats)."""

    def setup(router: respx.MockRouter) -> None:
        router.post("/inquiries").respond(202, json=submitted)
        answers = list(polls) or [PROCESSING]

        def poll(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json=answers.pop(0) if len(answers) > 1 else answers[0])

        router.get(f"/inquiries/{INQUIRY}").mock(side_effect=poll)

    return setup


FAST = {"poll_initial_s": 0.001, "poll_max_s": 0.004}


class TestBank(ParkingConformance):
    connector = BankConnector()
    config_values = FAST
    scenarios = (
        ConnectorTestScenario(
            id="one account after one poll",
            household=household(A, B),
            partner=bank(done(account(A))),
            expected_records=(
                BankAccountRecord(
                    id_number=A,
                    bank="中国工商银行",
                    account="************2233",
                    balance=Decimal("3000.00"),
                ),
            ),
            expected_calls=2,
        ),
        ConnectorTestScenario(
            id="an account each",
            household=household(A, B),
            partner=bank(done(account(A), account(B, balance="10.00"))),
            expected_records=(
                BankAccountRecord(
                    id_number=A,
                    bank="中国工商银行",
                    account="************2233",
                    balance=Decimal("3000.00"),
                ),
                BankAccountRecord(
                    id_number=B,
                    bank="中国工商银行",
                    account="************2233",
                    balance=Decimal("10.00"),
                ),
            ),
        ),
        ConnectorTestScenario(
            id="no accounts", household=household(A, B), partner=bank(done()), expected_calls=2
        ),
        ConnectorTestScenario(
            id="DONE at once on submit",
            household=household(A),
            partner=bank(submitted=done(account(A, balance="0.00"))),
            expected_records=(
                BankAccountRecord(
                    id_number=A, bank="中国工商银行", account="************2233", balance=Decimal(0)
                ),
            ),
            expected_calls=1,
        ),
        ConnectorTestScenario(
            id="foreign ID number",
            household=household(A),
            partner=bank(done(account(FOREIGN))),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="DONE without accounts",
            household=household(A),
            partner=bank({"inquiry_id": INQUIRY, "state": "DONE"}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="unknown state",
            household=household(A),
            partner=bank({"inquiry_id": INQUIRY, "state": "FAILED"}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="poll answers for another inquiry",
            household=household(A),
            partner=bank({**done(), "inquiry_id": "inq_other"}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="inquiry id that is a path",
            household=household(A),
            partner=bank(submitted={"inquiry_id": "../../admin", "state": "PROCESSING"}),
            expected_error=MalformedResponse,
            expected_calls=1,
        ),
    )

    parks = ConnectorTestScenario(
        id="still processing", household=household(A, B), partner=bank(PROCESSING)
    )
    omits_a_member = "only accounts are listed: an absent member has no record"
    duplicates_a_member = "accounts are listed, not members: one person may hold several"

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/health").respond(200, json={"state": "UP"})


class TestPolling:
    async def test_polls_until_done(self) -> None:
        setup = bank(PROCESSING, PROCESSING, PROCESSING, done(account(B)))
        run = await fetch(BankConnector(), household(A, B), setup, **FAST)
        assert run.error is None, run.error
        assert [r.method for r in run.partner.requests] == ["POST"] + ["GET"] * 4
        assert run.attempts == 5
        assert run.evidence is not None
        assert [r.id_number for r in run.evidence.records] == [B]

    async def test_submit_names_every_customer(self) -> None:
        run = await fetch(BankConnector(), household(A, B), bank(done()), **FAST)
        assert json.loads(run.partner.requests[0].content) == {
            "customers": [{"id_number": A}, {"id_number": B}]
        }
        assert run.partner.requests[1].url.path == f"/bank/inquiries/{INQUIRY}"

    def test_backoff_polls_at_once_then_doubles_up_to_the_cap(self) -> None:
        assert list(islice(poll_delays(0.01, 0.5), 9)) == [
            0.0,
            0.01,
            0.02,
            0.04,
            0.08,
            0.16,
            0.32,
            0.5,
            0.5,
        ]

    async def test_first_poll_is_immediate(self) -> None:
        started = time.perf_counter()
        run = await fetch(
            BankConnector(), household(A), bank(done()), poll_initial_s=5, poll_max_s=5
        )
        assert run.error is None, run.error
        assert time.perf_counter() - started < 1

    async def test_never_done_ends_at_the_time_budget(self) -> None:
        # A budget of 75 polls' worth: on a loaded machine (the suite's other workers) a
        # poll may wait for the event loop far longer than its 4 ms, so only "polled
        # again, and stopped at the budget" is asserted, not how many times.
        run = await fetch(BankConnector(), household(A), bank(), timeout_s=0.3, **FAST)
        assert isinstance(run.error, PartnerTimeout)
        assert run.elapsed_s < 1.2
        assert run.attempts >= 3  # submitted, then kept polling until the budget ran out

    async def test_unknown_inquiry_is_rejected(self) -> None:
        def setup(router: respx.MockRouter) -> None:
            router.post("/inquiries").respond(202, json=PROCESSING)
            router.get(f"/inquiries/{INQUIRY}").respond(404, json={"error": "unknown inquiry"})

        run = await fetch(BankConnector(), household(A), setup, **FAST)
        assert isinstance(run.error, PartnerRejected)
        assert run.attempts == 2


class TestMasking:
    async def test_account_keeps_only_its_last_four_digits(self) -> None:
        run = await fetch(
            BankConnector(), household(A), bank(done(account(A, "6222020200119876"))), **FAST
        )
        assert run.evidence is not None
        (record,) = run.evidence.records
        assert isinstance(record, BankAccountRecord)
        assert record.account == "************9876"
        assert "6222020200119876" not in run.evidence.model_dump_json()

    async def test_balance_as_json_number_stays_exact(self) -> None:
        body = (
            b'{"inquiry_id": "inq_7f3a", "state": "DONE", "accounts": [{"id_number": "'
            + A.encode()
            + b'", "bank": "b", "account": "1234567", "balance": 0.10}]}'
        )

        def setup(router: respx.MockRouter) -> None:
            router.post("/inquiries").respond(202, content=body)

        run = await fetch(BankConnector(), household(A), setup, **FAST)
        assert run.evidence is not None
        (record,) = run.evidence.records
        assert isinstance(record, BankAccountRecord)
        assert str(record.balance) == "0.10"
        assert record.account == "***4567"
