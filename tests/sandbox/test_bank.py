"""Bank: submit an inquiry, poll until DONE; processing time is the bank fault's
`processing_ms` (else its latency), on the sandbox's clock."""

import asyncio

import httpx
import pytest

from sandbox.inquiries import Inquiries
from tests.sandbox.helpers import ALICE, BOB, Seed

ACCOUNT = {"bank": "中国工商银行", "account": "6222020200112233", "balance": 3000}


async def submit(client: httpx.AsyncClient, *id_numbers: str) -> str:
    body = {"customers": [{"id_number": id_number} for id_number in id_numbers]}
    response = await client.post("/bank/inquiries", json=body)
    assert response.status_code == 202
    assert response.json()["state"] == "PROCESSING"
    inquiry_id: str = response.json()["inquiry_id"]
    assert inquiry_id.startswith("inq_")
    return inquiry_id


async def test_an_instant_inquiry_is_done_at_the_first_poll(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(ALICE, bank_accounts=[ACCOUNT, {**ACCOUNT, "bank": "中国银行", "balance": "0.5"}])
    await seed(BOB)
    inquiry_id = await submit(client, ALICE, BOB)

    response = await client.get(f"/bank/inquiries/{inquiry_id}")

    assert response.status_code == 200
    assert response.json() == {
        "inquiry_id": inquiry_id,
        "state": "DONE",
        "accounts": [
            {
                "id_number": ALICE,
                "bank": "中国工商银行",
                "account": "6222020200112233",
                "balance": "3000.00",
            },
            {
                "id_number": ALICE,
                "bank": "中国银行",
                "account": "6222020200112233",
                "balance": "0.50",
            },
        ],
    }


async def test_an_inquiry_processes_for_the_latency_set_at_submission(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(ALICE, bank_accounts=[ACCOUNT])
    await client.put("/faults/bank", json={"latency_ms": 100})
    inquiry_id = await submit(client, ALICE)
    await client.delete("/faults/bank")  # polls answer at once; processing keeps its 100 ms

    processing = await client.get(f"/bank/inquiries/{inquiry_id}")
    await asyncio.sleep(0.12)
    done = await client.get(f"/bank/inquiries/{inquiry_id}")

    assert processing.json() == {"inquiry_id": inquiry_id, "state": "PROCESSING"}
    assert done.json()["state"] == "DONE"
    assert [account["balance"] for account in done.json()["accounts"]] == ["3000.00"]


async def test_processing_time_of_its_own_keeps_polls_fast_until_the_clock_passes_it(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(ALICE, bank_accounts=[ACCOUNT])
    fault = await client.put("/faults/bank", json={"mode": "ok", "processing_ms": 300_000})
    inquiry_id = await submit(client, ALICE)

    processing = await client.get(f"/bank/inquiries/{inquiry_id}")
    almost = await client.post("/clock", json={"advance_s": 299})
    still = await client.get(f"/bank/inquiries/{inquiry_id}")
    passed = await client.post("/clock", json={"advance_s": 1})
    done = await client.get(f"/bank/inquiries/{inquiry_id}")

    assert fault.json()["processing_ms"] == 300_000
    assert processing.json() == {"inquiry_id": inquiry_id, "state": "PROCESSING"}
    assert almost.json()["offset_s"] == 299
    assert still.json()["state"] == "PROCESSING"
    assert passed.json()["offset_s"] == 300
    assert done.json()["state"] == "DONE"
    assert [account["balance"] for account in done.json()["accounts"]] == ["3000.00"]


async def test_processing_applies_to_inquiries_submitted_while_it_is_set(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(ALICE, bank_accounts=[ACCOUNT])
    await client.put("/faults/bank", json={"processing_ms": 300_000})
    parked = await submit(client, ALICE)
    await client.put("/faults/bank", json={"processing_ms": 0})
    instant = await submit(client, ALICE)

    assert (await client.get(f"/bank/inquiries/{parked}")).json()["state"] == "PROCESSING"
    assert (await client.get(f"/bank/inquiries/{instant}")).json()["state"] == "DONE"


class TestClock:
    async def test_it_starts_in_real_time_and_resets_to_it(self, client: httpx.AsyncClient) -> None:
        start = await client.get("/clock")
        await client.post("/clock", json={"advance_s": 60})
        reset = await client.delete("/clock")

        assert start.json() == {"offset_s": 0}
        assert reset.json() == {"offset_s": 0}

    @pytest.mark.parametrize(
        "body", [{"advance_s": -1}, {"advance_s": 0}, {"advance_s": 1e12}, {}, {"back_s": 1}]
    )
    async def test_it_never_moves_back_nor_absurdly_far(
        self, client: httpx.AsyncClient, body: dict[str, object]
    ) -> None:
        response = await client.post("/clock", json=body)

        assert response.status_code == 422
        assert (await client.get("/clock")).json() == {"offset_s": 0}


async def test_nobody_with_accounts_is_done_with_no_accounts(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed(BOB)
    inquiry_id = await submit(client, BOB)

    response = await client.get(f"/bank/inquiries/{inquiry_id}")

    assert response.json() == {"inquiry_id": inquiry_id, "state": "DONE", "accounts": []}


async def test_an_unknown_inquiry_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/bank/inquiries/inq_0000")

    assert (response.status_code, response.json()) == (404, {"error": "unknown inquiry"})


@pytest.mark.parametrize(
    "body", [{}, {"customers": ALICE}, {"customers": [ALICE]}, {"customers": [{"id": ALICE}]}]
)
async def test_a_malformed_submission_is_a_400(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/bank/inquiries", json=body)

    assert response.status_code == 400
    assert response.json()["error"]


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/bank/health")

    assert (response.status_code, response.json()) == (200, {"state": "UP"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestInquiries:
    def test_an_inquiry_is_done_once_processing_time_has_passed(self) -> None:
        clock = FakeClock()
        inquiries = Inquiries(clock=clock)
        inquiry_id = inquiries.submit((ALICE,), processing_s=2.0)

        clock.now += 1.999
        early = inquiries.get(inquiry_id)
        clock.now += 0.001
        ready = inquiries.get(inquiry_id)

        assert early is not None
        assert early[1] is False
        assert ready is not None
        assert ready[0].id_numbers == (ALICE,)
        assert ready[1] is True

    def test_a_finished_inquiry_expires_after_retention(self) -> None:
        clock = FakeClock()
        inquiries = Inquiries(retention_s=10, clock=clock)
        old = inquiries.submit((ALICE,), processing_s=0)

        clock.now += 10
        assert inquiries.get(old) is None
        inquiries.submit((BOB,), processing_s=0)

        assert len(inquiries) == 1  # the expired one was dropped on the next submission

    def test_the_oldest_inquiries_go_when_over_capacity(self) -> None:
        inquiries = Inquiries(capacity=3, clock=FakeClock())
        ids = [inquiries.submit((ALICE,), processing_s=0) for _ in range(5)]

        assert len(inquiries) == 3
        assert [inquiries.get(inquiry_id) is not None for inquiry_id in ids] == [
            False,
            False,
            True,
            True,
            True,
        ]


async def test_processing_time_is_the_bank_s_alone(client: httpx.AsyncClient) -> None:
    """The other agencies answer at once or never: a processing time for one of them
    would change nothing, so it is refused rather than echoed back."""
    one = await client.put("/faults/vehicles", json={"mode": "ok", "processing_ms": 5})
    many = await client.put("/faults", json={"pensions": {"processing_ms": 5}})

    assert one.status_code == 422, one.text
    assert one.json()["errors"][0]["loc"] == ["body", "processing_ms"]
    assert many.status_code == 422, many.text
    assert many.json()["errors"][0]["loc"] == ["body", "pensions", "processing_ms"]
    assert (await client.get("/faults/vehicles")).json()["processing_ms"] is None
