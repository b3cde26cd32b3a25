"""Injected faults: every mode, on every agency, in that agency's own wire format."""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml.ElementTree import ParseError, fromstring

from sandbox.faults import NORMAL, FaultBoard, FaultSetting
from sandbox.state import SandboxState
from tests.sandbox.helpers import ALICE

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Agency:
    source: str
    query: Call
    health: str
    parse: Callable[[bytes], object]
    is_own_error: Callable[[object, int], bool]
    """Whether a parsed body is this agency's error shape for a status."""


def _xml_error(body: object, status: int) -> bool:
    return isinstance(body, Element) and body.tag == "Error" and body.get("code") == f"E{status}"


def _json_error(body: object, **shape: object) -> bool:
    """Whether `body` has exactly the keys of `shape`, each equal to a value or of a type."""
    if not isinstance(body, dict) or set(body) != set(shape):
        return False
    return all(
        isinstance(body[key], want) if isinstance(want, type) else body[key] == want
        for key, want in shape.items()
    )


AGENCIES = {
    agency.source: agency
    for agency in (
        Agency(
            "vehicles",
            lambda c: c.post(
                "/vehicles/query",
                content=f'<VehicleQuery><Person idNumber="{ALICE}"/></VehicleQuery>',
                headers={"Content-Type": "application/xml"},
            ),
            "/vehicles/ping",
            fromstring,
            _xml_error,
        ),
        Agency(
            "pensions",
            lambda c: c.post("/pensions/batch", json={"requests": [{"seq": 1, "sfzh": ALICE}]}),
            "/pensions/health",
            json.loads,
            lambda body, status: _json_error(body, code=5000, message=str),
        ),
        Agency(
            "housing_fund",
            lambda c: c.post("/housing_fund/account/query", data={"zjhm": ALICE}),
            "/housing_fund/status",
            json.loads,
            lambda body, status: _json_error(body, ret="9999", msg=str),
        ),
        Agency(
            "real_estate",
            lambda c: c.post("/real_estate/registrations/search", json={"id_numbers": [ALICE]}),
            "/real_estate/health",
            json.loads,
            lambda body, status: _json_error(body, error=dict),
        ),
        Agency(
            "public_payroll",
            lambda c: c.post("/public_payroll/verify", json={"sfzh_list": [ALICE]}),
            "/public_payroll/ping",
            json.loads,
            lambda body, status: _json_error(body, flag="0", errmsg=str),
        ),
        Agency(
            "bank",
            lambda c: c.post("/bank/inquiries", json={"customers": [{"id_number": ALICE}]}),
            "/bank/health",
            json.loads,
            lambda body, status: _json_error(body, error=str),
        ),
        Agency(
            "business",
            lambda c: c.post("/business/persons/search", json={"idNumbers": [ALICE]}),
            "/business/health",
            json.loads,
            lambda body, status: _json_error(
                body, success=False, errorCode=f"E{status}", errorMsg=str
            ),
        ),
        Agency(
            "tax",
            lambda c: c.post("/tax/income/batch", json={"taxpayers": [{"sfzh": ALICE}]}),
            "/tax/health",
            json.loads,
            lambda body, status: _json_error(body, retCode=f"{status}000", retMsg=str),
        ),
        Agency(
            "social_insurance",
            lambda c: c.post("/social_insurance/query", data={"aac002": ALICE}),
            "/social_insurance/ping",
            json.loads,
            lambda body, status: _json_error(body, code=status, message=str),
        ),
    )
}


@pytest.fixture(params=list(AGENCIES))
def agency(request: pytest.FixtureRequest) -> Agency:
    return AGENCIES[request.param]


async def set_fault(client: httpx.AsyncClient, source: str, **setting: object) -> None:
    response = await client.put(f"/faults/{source}", json=setting)
    assert response.status_code == 200, response.text


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await call
    return response, time.perf_counter() - started


class TestModes:
    async def test_ok_answers_normally(self, client: httpx.AsyncClient, agency: Agency) -> None:
        response = await agency.query(client)

        assert response.status_code in (200, 202)
        assert not agency.is_own_error(agency.parse(response.content), response.status_code)

    async def test_error_is_a_500_in_the_agencys_own_shape(
        self, client: httpx.AsyncClient, agency: Agency
    ) -> None:
        await set_fault(client, agency.source, mode="error")

        response = await agency.query(client)

        assert response.status_code == 500
        assert agency.is_own_error(agency.parse(response.content), 500)

    async def test_garbage_is_a_200_that_does_not_parse(
        self, client: httpx.AsyncClient, agency: Agency
    ) -> None:
        await set_fault(client, agency.source, mode="garbage")

        response = await agency.query(client)

        assert response.status_code == 200
        with pytest.raises((ValueError, ParseError)):
            agency.parse(response.content)

    async def test_down_is_a_503_with_retry_after_on_every_call(
        self, client: httpx.AsyncClient, agency: Agency
    ) -> None:
        await set_fault(client, agency.source, mode="down")

        for response in (await agency.query(client), await client.get(agency.health)):
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert agency.is_own_error(agency.parse(response.content), 503)

    async def test_hang_never_answers(
        self, client: httpx.AsyncClient, agency: Agency, state: SandboxState
    ) -> None:
        await set_fault(client, agency.source, mode="hang")

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await agency.query(client)

        assert state.faults.hanging == 0  # the cancelled call did not linger

    async def test_slow_waits_then_answers_normally(
        self, client: httpx.AsyncClient, agency: Agency
    ) -> None:
        await set_fault(client, agency.source, mode="slow", latency_ms=30)

        response, elapsed = await timed(agency.query(client))

        assert elapsed >= 0.03
        assert response.status_code in (200, 202)
        assert not agency.is_own_error(agency.parse(response.content), response.status_code)


class TestLatencyAndRates:
    @pytest.mark.parametrize(
        ("mode", "status"), [("ok", 200), ("error", 500), ("down", 503), ("garbage", 200)]
    )
    async def test_latency_applies_in_every_mode(
        self, client: httpx.AsyncClient, mode: str, status: int
    ) -> None:
        await set_fault(client, "pensions", mode=mode, latency_ms=30)

        response, elapsed = await timed(AGENCIES["pensions"].query(client))

        assert response.status_code == status
        assert elapsed >= 0.03

    async def test_an_error_rate_fails_some_calls_only(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, "public_payroll", mode="error", error_rate=0.5)

        statuses = [(await AGENCIES["public_payroll"].query(client)).status_code for _ in range(60)]

        assert set(statuses) == {200, 500}

    async def test_ok_honours_an_error_rate_too(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, "public_payroll", mode="ok", error_rate=1.0)

        response = await AGENCIES["public_payroll"].query(client)

        assert response.status_code == 500

    def test_slow_without_latency_still_waits(self) -> None:
        assert FaultSetting(mode="slow").delay_s == 1.0
        assert FaultSetting(mode="slow", latency_ms=20).delay_s == 0.02

    @pytest.mark.parametrize(
        ("setting", "rate"),
        [
            (FaultSetting(mode="error"), 1.0),
            (FaultSetting(mode="error", error_rate=0.25), 0.25),
            (FaultSetting(mode="ok"), 0.0),
            (FaultSetting(mode="garbage", error_rate=0.5), 0.0),
        ],
    )
    def test_failure_rate(self, setting: FaultSetting, rate: float) -> None:
        assert setting.failure_rate == rate


class TestIsolation:
    async def test_a_fault_stays_with_its_source(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, "vehicles", mode="down")

        assert (await AGENCIES["pensions"].query(client)).status_code == 200
        assert (await client.post("/people", json={"id_number": ALICE})).status_code == 200
        assert (await client.get("/faults")).status_code == 200

    async def test_an_unknown_path_under_a_down_agency_is_down_too(
        self, client: httpx.AsyncClient
    ) -> None:
        await set_fault(client, "bank", mode="down")

        response = await client.get("/bank/no-such-endpoint")

        assert response.status_code == 503

    async def test_resetting_brings_the_agency_back(self, client: httpx.AsyncClient) -> None:
        await set_fault(client, "housing_fund", mode="down")

        await client.delete("/faults/housing_fund")

        assert (await AGENCIES["housing_fund"].query(client)).status_code == 200


HEALTHY = {"mode": "ok", "latency_ms": 0, "error_rate": 0.0, "processing_ms": None}


class TestControl:
    async def test_every_source_starts_healthy(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/faults")

        assert response.json() == dict.fromkeys(AGENCIES, HEALTHY)

    async def test_a_fault_reads_back_as_set(self, client: httpx.AsyncClient) -> None:
        setting = {"mode": "error", "latency_ms": 50, "error_rate": 0.2, "processing_ms": 10}

        put = await client.put("/faults/bank", json=setting)
        one = await client.get("/faults/bank")
        every = await client.get("/faults")

        assert put.json() == one.json() == every.json()["bank"] == setting
        assert every.json()["vehicles"] == HEALTHY

    async def test_several_sources_at_once(self, client: httpx.AsyncClient) -> None:
        response = await client.put(
            "/faults", json={"bank": {"mode": "down"}, "vehicles": {"latency_ms": 5}}
        )

        assert response.status_code == 200
        assert response.json()["bank"]["mode"] == "down"
        assert response.json()["vehicles"] == {**HEALTHY, "latency_ms": 5}
        assert response.json()["pensions"] == HEALTHY

    async def test_an_unknown_source_in_a_bulk_update_changes_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.put(
            "/faults", json={"bank": {"mode": "down"}, "securities": {"mode": "down"}}
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"loc": ["body", "securities"], "msg": "unknown source"}
        ]
        assert (await client.get("/faults/bank")).json() == HEALTHY

    async def test_resetting_every_source(self, client: httpx.AsyncClient) -> None:
        await client.put("/faults", json={source: {"mode": "down"} for source in AGENCIES})

        response = await client.delete("/faults")

        assert response.json() == dict.fromkeys(AGENCIES, HEALTHY)

    async def test_resetting_one_source(self, client: httpx.AsyncClient) -> None:
        await client.put("/faults", json={"bank": {"mode": "down"}, "vehicles": {"mode": "down"}})

        response = await client.delete("/faults/bank")

        assert response.json() == HEALTHY
        assert (await client.get("/faults/vehicles")).json()["mode"] == "down"

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_an_unknown_source_is_a_404(self, client: httpx.AsyncClient, method: str) -> None:
        response = await client.request(method, "/faults/securities", json={"mode": "down"})

        assert response.status_code == 404

    @pytest.mark.parametrize(
        "setting",
        [
            {"mode": "flaky"},
            {"latency_ms": -1},
            {"error_rate": 1.5},
            {"mode": "ok", "retries": 2},
            {"processing_ms": -1},
            {"processing_ms": 31 * 24 * 3600 * 1000},
        ],
        ids=["mode", "latency", "rate", "extra", "processing", "processing-too-long"],
    )
    async def test_an_invalid_setting_is_a_422(
        self, client: httpx.AsyncClient, setting: dict[str, object]
    ) -> None:
        response = await client.put("/faults/bank", json=setting)

        assert response.status_code == 422
        assert (await client.get("/faults/bank")).json() == HEALTHY

    async def test_a_healthy_setting_takes_the_fast_path(
        self, client: httpx.AsyncClient, state: SandboxState
    ) -> None:
        await client.put("/faults/bank", json={"mode": "ok", "latency_ms": 0})

        assert state.faults.get("bank") is NORMAL


def test_the_board_logs_a_change_of_fault_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Resetting healthy sources, or setting a fault a source already has, says nothing:
    the log shows when a partner's behaviour changed, not every test's clean-up."""
    board = FaultBoard(["bank", "vehicles"])
    slow = FaultSetting(mode="ok", latency_ms=200)
    with caplog.at_level(logging.INFO, logger="sandbox.faults"):
        board.reset()
        board.set("bank", slow)
        board.set("bank", FaultSetting(mode="ok", latency_ms=200))
        board.reset()

    said = [record.getMessage() for record in caplog.records]
    assert said == [
        "fault on bank: mode=ok latency_ms=200 error_rate=0.00 processing_ms=None",
        "fault on bank: mode=ok latency_ms=0 error_rate=0.00 processing_ms=None",
    ]
    assert board.get("bank") is NORMAL
