"""Connector health over real HTTP: breaker, pause, health model, metrics.

The service runs on a database of its own (breaker state is shared through the database)
with short breaker timings; the sandbox agencies count the household queries they receive,
so the tests count what really arrives at the partner.
"""

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.connector import CallOutcome
from service.auth.principal import Role
from service.auth.service import create_api_key
from service.config import Settings
from service.db import create_engine, create_session_factory
from tests.conftest import CLIENT_TLS, LiveService, MigratedTemplates, _free_port, running_service
from tests.factories import make_id_number, member, verification_body

WAIT = {"Prefer": "wait=10"}
_people = itertools.count(1)
SOURCES = ("vehicles", "pensions", "housing_fund", "real_estate", "public_payroll", "bank")


@dataclass
class Setup:
    service: LiveService
    tokens: dict[str, str]

    async def queries(self, agency: str) -> int:
        """Household queries the agency itself received (the sandbox counts them)."""
        async with httpx.AsyncClient(base_url=self.service.base_url, verify=CLIENT_TLS) as plain:
            counts: dict[str, int] = (await plain.get("/sandbox/queries")).json()
        return counts[agency]

    def client(self, role: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.service.base_url,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=30,
            verify=CLIENT_TLS,
        )


@pytest.fixture(scope="module")
async def setup(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Setup]:
    settings = Settings(
        database_url=fresh_database_url,
        port=_free_port(),
        sandbox="on",
        sandbox_data=Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        breaker_open_s=4.0,  # long enough for the three refused calls, even on a busy machine
        breaker_open_max_s=8.0,
        health_sync_s=0.05,
        health_probe_interval_s=0,  # the breaker alone decides here
        health_bucket_s=1,
        health_window_s=2,
        health_min_calls=3,
    )
    engine = create_engine(fresh_database_url)
    tokens = {}
    async with create_session_factory(engine)() as session:
        for role in ("caseworker", "operator", "integrator", "auditor"):
            _, tokens[role] = await create_api_key(session, role=Role(role), region="00")
        await session.commit()
    await engine.dispose()
    async with running_service(settings) as service:
        yield Setup(service, tokens)
        async with httpx.AsyncClient(base_url=service.base_url, verify=CLIENT_TLS) as plain:
            for source in SOURCES:
                await plain.delete(f"/sandbox/faults/{source}")


@pytest.fixture
async def caseworker(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    async with setup.client("caseworker") as client:
        yield client


@pytest.fixture
async def operator(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    async with setup.client("operator") as client:
        yield client


async def fault(setup: Setup, source: str, mode: str | None) -> None:
    async with httpx.AsyncClient(base_url=setup.service.base_url, verify=CLIENT_TLS) as plain:
        if mode is None:
            response = await plain.delete(f"/sandbox/faults/{source}")
        else:
            response = await plain.put(f"/sandbox/faults/{source}", json={"mode": mode})
        assert response.status_code == 200


async def verify(caseworker: httpx.AsyncClient) -> dict[str, Any]:
    """A household that would be eligible if every source answered: nothing anywhere."""
    # People of their own (the shared counter of test ID numbers is left to other tests).
    person = make_id_number("530103", birth="19660606", sequence=next(_people))
    seeded = await caseworker.post("/sandbox/people", json={"id_number": person})
    assert seeded.status_code == 200
    body = verification_body([member(person)], region_code="530103")
    response = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
    assert response.status_code == 200, response.text
    verification: dict[str, Any] = response.json()
    assert verification["status"] == "completed"
    return verification


def source(verification: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in verification["sources"] if s["source"] == name)


async def _at_least(count: Any, least: int) -> bool:
    return bool(await count() >= least)


async def eventually(check: Any, tries: int = 200, pause_s: float = 0.05) -> Any:
    """Poll `check()` until it returns something truthy (bounded; never a timing assertion)."""
    for _ in range(tries):
        result = await check()
        if result:
            return result
        await asyncio.sleep(pause_s)
    raise AssertionError("condition never held")


async def health(operator: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await operator.get(f"/v1/connectors/{name}/health")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


class TestBreaker:
    async def test_down_partner_opens_the_breaker_and_stops_being_called(
        self, setup: Setup, caseworker: httpx.AsyncClient, operator: httpx.AsyncClient
    ) -> None:
        await fault(setup, "bank", "down")
        before = await setup.queries("bank")
        details, attempts = [], []
        for _ in range(5):  # 5 consecutive failures open it
            verification = await verify(caseworker)
            bank = source(verification, "bank")
            details.append(bank["detail"])
            attempts.append(bank["attempts"])  # counted by the fetch's own metered client
            assert bank["status"] == "error"
            assert verification["recommendation"] == "review"
        assert all(d.startswith("partner error: HTTP 503") for d in details)
        reached = await setup.queries("bank")
        assert reached - before == sum(attempts)
        # The retry budget (10 % of the calls of the last minute, plus 3) is spent long
        # before 5 fetches × 3 attempts: the later failures surface at once.
        assert attempts == sorted(attempts, reverse=True)
        assert attempts[0] <= 3
        assert attempts[-1] == 1

        for _ in range(3):
            verification = await verify(caseworker)
            bank = source(verification, "bank")
            assert (bank["status"], bank["detail"]) == ("error", "circuit open")
            assert not bank.get("attempts")
            assert verification["recommendation"] == "review"
        assert await setup.queries("bank") == reached  # nothing reached the partner
        async with httpx.AsyncClient(base_url=setup.service.base_url, verify=CLIENT_TLS) as plain:
            text = (await plain.get("/metrics")).text
        refused = re.search(
            r'hedui_connector_calls_total\{connector="bank",outcome="circuit_open"\} (\S+)', text
        )
        assert refused is not None
        assert float(refused.group(1)) >= 3

        state = await health(operator, "bank")
        assert (state["status"], state["breaker"]) == ("down", "open")
        assert state["breaker_until"] is not None
        assert state["last_error"]["outcome"] == "unavailable"

        # Recovery: once the open period is over a trial call goes through and closes it.
        await fault(setup, "bank", None)

        async def bank_answers() -> bool:
            return source(await verify(caseworker), "bank")["status"] in ("ok", "no_record")

        await eventually(bank_answers)
        assert await setup.queries("bank") > reached

        async def transitions() -> list[tuple[str, str | None]]:
            events = (await operator.get("/v1/connectors/bank/events")).json()["items"]
            actions = [(e["action"], e["reason"]) for e in reversed(events)]
            return actions if actions[-1][0] == "breaker_closed" else []

        # Each transition says why.
        assert (await eventually(transitions))[-3:] == [
            ("breaker_open", "5 failures in a row"),
            ("breaker_half_open", "open period over: trial calls go through"),
            ("breaker_closed", "trial call succeeded"),
        ]

        async def operational() -> bool:
            await verify(caseworker)
            return (await health(operator, "bank"))["status"] == "operational"

        await eventually(operational, tries=100)

    async def test_garbage_is_a_source_error_never_a_500_and_no_breaker_failure(
        self, setup: Setup, caseworker: httpx.AsyncClient, operator: httpx.AsyncClient
    ) -> None:
        await fault(setup, "pensions", "garbage")
        for _ in range(6):
            pensions = source(await verify(caseworker), "pensions")
            assert pensions["status"] == "error"
            assert pensions["detail"].startswith("malformed response")
        state = await health(operator, "pensions")
        assert state["breaker"] == "closed"  # garbage answers fast; only outages open it
        assert state["failures"] >= 1  # but it does lower the success rate
        await fault(setup, "pensions", None)


class TestPause:
    async def test_paused_source_is_skipped_and_the_pause_is_recorded(
        self,
        setup: Setup,
        caseworker: httpx.AsyncClient,
        operator: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        response = await operator.post(
            "/v1/connectors/vehicles/pause", json={"reason": "agency maintenance window"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["paused"]["reason"] == "agency maintenance window"
        async with setup.client("integrator") as integrator:
            resource = await integrator.get("/v1/connectors/vehicles")
        assert resource.json()["paused"]["paused_by"] == "operator-00", resource.text
        reached = await setup.queries("vehicles")

        verification = await verify(caseworker)

        vehicles = source(verification, "vehicles")
        assert (vehicles["status"], vehicles["detail"]) == ("error", "paused by operator")
        assert verification["recommendation"] == "review"
        report = (await caseworker.get(f"/v1/verifications/{verification['id']}/report")).json()
        # Which connector was not asked, at which version: the report still says.
        assert source(report, "vehicles")["connector_version"] == "1.0.0"
        assert await setup.queries("vehicles") == reached
        again = await operator.post("/v1/connectors/vehicles/pause", json={"reason": "x"})
        assert again.status_code == 409

        resumed = await operator.post("/v1/connectors/vehicles/resume", json={"reason": "done"})
        assert resumed.status_code == 200
        assert resumed.json()["paused"] is None
        assert (await operator.get("/v1/connectors/vehicles")).json()["paused"] is None
        assert source(await verify(caseworker), "vehicles")["status"] in ("ok", "no_record")
        assert await setup.queries("vehicles") > reached

        events = (await operator.get("/v1/connectors/vehicles/events")).json()["items"]
        pause, resume = (
            next(e for e in events if e["action"] == action) for action in ("pause", "resume")
        )
        assert pause["actor"] == resume["actor"] == "operator-00"
        assert (pause["reason"], resume["reason"]) == ("agency maintenance window", "done")
        # Seen in a log kept at WARNING: which connector and which key, not the holder's name.
        logged = [
            (record.msg["event"], record.msg["connector"], record.levelno)
            for record in caplog.records
            if isinstance(record.msg, dict)
            and record.msg.get("event") in ("connector_paused", "connector_resumed")
        ]
        assert logged == [
            ("connector_paused", "vehicles", logging.WARNING),
            ("connector_resumed", "vehicles", logging.WARNING),
        ]
        assert "operator-00" not in caplog.text

    async def test_a_pause_stops_a_fetch_under_way_at_its_next_request(
        self, setup: Setup, caseworker: httpx.AsyncClient, operator: httpx.AsyncClient
    ) -> None:
        """The bank takes 3 s to process an inquiry and is polled meanwhile: paused after
        the submit, it gets no poll more than the one in flight, and the source ends as a
        paused one does, not charged to the bank."""
        async with httpx.AsyncClient(base_url=setup.service.base_url, verify=CLIENT_TLS) as plain:

            async def bank_calls() -> int:
                traffic = (await plain.get("/sandbox/traffic")).json()
                return int(traffic.get("bank", {}).get("calls", 0))

            slow = {"mode": "ok", "processing_ms": 3000}
            assert (await plain.put("/sandbox/faults/bank", json=slow)).status_code == 200
            await plain.delete("/sandbox/traffic")
            failures = (await health(operator, "bank"))["failures"]
            running = asyncio.create_task(verify(caseworker))
            try:
                await eventually(lambda: _at_least(bank_calls, 2))  # submitted, polling
                paused = await operator.post(
                    "/v1/connectors/bank/pause", json={"reason": "answers stale data"}
                )
                assert paused.status_code == 200, paused.text
                at_pause = await bank_calls()
                verification = await running
            finally:
                await operator.post("/v1/connectors/bank/resume", json={"reason": "done"})
                await plain.delete("/sandbox/faults/bank")

            bank = source(verification, "bank")
            assert (bank["status"], bank["detail"]) == ("error", "paused by operator")
            assert verification["recommendation"] == "review"
            assert await bank_calls() <= at_pause + 1  # at most the poll already on its way
            assert (await health(operator, "bank"))["failures"] == failures

    async def test_of_operators_pausing_at_once_exactly_one_pauses(
        self, setup: Setup, operator: httpx.AsyncClient
    ) -> None:
        """Four pauses at the same moment: one 200, three 409 "already paused", one event;
        the same for four resumptions."""

        async def events(action: str) -> int:
            page = await operator.get(
                "/v1/connectors/public_payroll/events", params={"action": action, "limit": 200}
            )
            return len(page.json()["items"])

        before = {action: await events(action) for action in ("pause", "resume")}
        for action, body in (("pause", {"reason": "at once"}), ("resume", {"reason": "back"})):
            clients = [setup.client("operator") for _ in range(4)]
            try:
                answers = await asyncio.gather(
                    *(
                        client.post(f"/v1/connectors/public_payroll/{action}", json=body)
                        for client in clients
                    )
                )
            finally:
                for client in clients:
                    await client.aclose()
            statuses = sorted(answer.status_code for answer in answers)
            assert statuses == [200, 409, 409, 409], [answer.text for answer in answers]
            refused = [answer.json() for answer in answers if answer.status_code == 409]
            expected = "already paused" if action == "pause" else "not paused"
            assert all(expected in problem["detail"] for problem in refused), refused
            assert await events(action) == before[action] + 1

    @pytest.mark.parametrize("role", ["caseworker", "integrator", "auditor"])
    async def test_only_operators_pause(self, setup: Setup, role: str) -> None:
        async with setup.client(role) as client:
            response = await client.post("/v1/connectors/bank/pause", json={"reason": "no"})
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    async def test_pause_needs_a_reason_and_a_known_connector(
        self, operator: httpx.AsyncClient
    ) -> None:
        missing = await operator.post("/v1/connectors/bank/pause", json={})
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["loc"] == ["body", "reason"]
        unknown = await operator.post("/v1/connectors/nope/pause", json={"reason": "x"})
        assert unknown.status_code == 404


@dataclass
class Probed:
    """A service of its own whose health probes run (every 0.2 s) and an operator's key."""

    service: LiveService
    operator: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.service.base_url,
            headers={"Authorization": f"Bearer {self.operator}"},
            timeout=30,
            verify=CLIENT_TLS,
        )


@pytest.fixture(scope="module")
async def probed(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_templates: MigratedTemplates,
) -> AsyncIterator[Probed]:
    # A database of its own: the shared breakers and pauses of `setup` are left alone.
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    url, drop = await migrated_templates.copy(dialect, tmp_path_factory.mktemp("db"))
    settings = Settings(
        database_url=url,
        port=_free_port(),
        sandbox="on",
        sandbox_data=Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        health_sync_s=0.05,
        health_probe_interval_s=0.2,
    )
    engine = create_engine(url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.operator, region="00")
        await session.commit()
    await engine.dispose()
    async with running_service(settings) as service:
        yield Probed(service, token)
    if drop is not None:
        await drop()


class TestPauseStopsProbes:
    async def test_a_paused_partner_is_not_called_by_health_probes(self, probed: Probed) -> None:
        async with probed.client() as client:

            async def calls() -> dict[str, int]:
                traffic = (await client.get("/sandbox/traffic")).json()
                return {source: seen["calls"] for source, seen in traffic.items()}

            paused = await client.post(
                "/v1/connectors/vehicles/pause", json={"reason": "the agency asked us to stop"}
            )
            assert paused.status_code == 200, paused.text
            await asyncio.sleep(0.5)  # a probe already under way when it was paused ends
            await client.delete("/sandbox/traffic")
            await asyncio.sleep(2.0)  # ten rounds of probes
            seen = await calls()
            assert seen["pensions"] > 0  # the others are still probed
            assert seen["vehicles"] == 0, seen

            resumed = await client.post(
                "/v1/connectors/vehicles/resume", json={"reason": "the agency is ready"}
            )
            assert resumed.status_code == 200, resumed.text

            async def called_again() -> bool:
                return (await calls())["vehicles"] > 0

            await eventually(called_again)


class TestEvents:
    async def test_every_pause_and_resume_is_kept_and_paged_newest_first(
        self, operator: httpx.AsyncClient
    ) -> None:
        for cycle in range(3):
            paused = await operator.post(
                "/v1/connectors/housing_fund/pause", json={"reason": f"window {cycle}"}
            )
            assert paused.status_code == 200, paused.text
            resumed = await operator.post(
                "/v1/connectors/housing_fund/resume", json={"reason": f"done {cycle}"}
            )
            assert resumed.status_code == 200, resumed.text

        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await operator.get("/v1/connectors/housing_fund/events", params=params)).json()
            assert len(page["items"]) <= 2
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        reasons = [event["reason"] for event in seen if event["reason"]]
        assert reasons[:6] == ["done 2", "window 2", "done 1", "window 1", "done 0", "window 0"]
        assert [event["at"] for event in seen] == sorted(
            (event["at"] for event in seen), reverse=True
        )

        pauses = await operator.get(
            "/v1/connectors/housing_fund/events", params={"action": "pause", "limit": 200}
        )
        assert {event["action"] for event in pauses.json()["items"]} == {"pause"}
        assert len(pauses.json()["items"]) >= 3

    @pytest.mark.parametrize(
        "params",
        [{"cursor": "not-ours"}, {"limit": 0}, {"limit": 201}, {"action": "delete"}],
        ids=["cursor", "limit 0", "limit 201", "action"],
    )
    async def test_a_bad_page_request_is_422_naming_the_parameter(
        self, operator: httpx.AsyncClient, params: dict[str, Any]
    ) -> None:
        response = await operator.get("/v1/connectors/housing_fund/events", params=params)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["query", next(iter(params))]


class TestReading:
    @pytest.mark.parametrize("role", ["operator", "integrator"])
    async def test_list_shows_every_connector_with_its_health(
        self, setup: Setup, role: str
    ) -> None:
        async with setup.client(role) as client:
            response = await client.get("/v1/connectors")
        assert response.status_code == 200
        listed = {item["name"]: item for item in response.json()}
        assert set(listed) == set(SOURCES)
        for item in listed.values():
            assert item["origin"] == "builtin"
            assert item["health"] in ("unknown", "operational", "degraded", "down")
            assert item["title"]
            assert item["version"]

    async def test_caseworkers_do_not_see_connectors(self, caseworker: httpx.AsyncClient) -> None:
        assert (await caseworker.get("/v1/connectors")).status_code == 403
        assert (await caseworker.get("/v1/connectors/bank/health")).status_code == 403

    async def test_unknown_connector_health_is_404(self, operator: httpx.AsyncClient) -> None:
        response = await operator.get("/v1/connectors/nope/health")
        assert response.status_code == 404

    async def test_history_has_a_point_per_bucket(self, operator: httpx.AsyncClient) -> None:
        response = await operator.get("/v1/connectors/bank/history")
        assert response.status_code == 200
        history = response.json()
        assert history["bucket_s"] == 1
        assert 3600 <= len(history["hour"]) <= 3602
        assert len(history["day"]) in (96, 97, 98)

    async def test_metrics_tell_the_same_story_without_personal_data(
        self, setup: Setup, caseworker: httpx.AsyncClient
    ) -> None:
        verification = await verify(caseworker)
        async with httpx.AsyncClient(base_url=setup.service.base_url, verify=CLIENT_TLS) as plain:
            response = await plain.get("/metrics")
        assert response.status_code == 200
        text = response.text
        # Every outcome's series exists from the start (at zero until it happens).
        for outcome in CallOutcome:
            assert f'hedui_connector_calls_total{{connector="bank",outcome="{outcome}"}}' in text
        assert 'hedui_connector_breaker_state{connector="bank"}' in text
        assert 'hedui_connector_retries_total{connector="bank"}' in text
        assert "hedui_connector_call_duration_seconds_bucket" in text
        recommendation = verification["recommendation"]
        assert (
            f'hedui_verifications_total{{recommendation="{recommendation}",status="completed"}}'
            in text
        )
        assert "hedui_verification_runs_in_flight" in text
        assert "hedui_verification_queue_depth" in text
        assert 'hedui_connector_in_flight{connector="bank"}' in text
        assert "_created" not in text
        # No ID-number shape, but a float's digits (a sum of 0.05 s is 0.049999999999999996).
        assert not re.search(r"(?<![\d.])\d{17}[\dXx]", text)

        # The status as an enum gauge: one 1 per connector, the status the API reports
        # (asked again should a status change between the two reads).
        async def same_story() -> bool:
            async with (
                setup.client("operator") as operator,
                httpx.AsyncClient(base_url=setup.service.base_url, verify=CLIENT_TLS) as plain,
            ):
                current = statuses((await plain.get("/metrics")).text)
                listed = (await operator.get("/v1/connectors")).json()
            assert set(current) == set(SOURCES)
            return current == {c["name"]: c["health"] for c in listed}

        assert await eventually(same_story, tries=20)

    async def test_every_retry_is_counted_and_polls_are_not_retries(
        self, setup: Setup, caseworker: httpx.AsyncClient
    ) -> None:
        before = await retries(setup, "housing_fund")
        await fault(setup, "housing_fund", "error")  # every answer a 500
        try:
            housing_fund = source(await verify(caseworker), "housing_fund")
        finally:
            await fault(setup, "housing_fund", None)
        assert housing_fund["status"] == "error"
        # One request per member; its two retries fit in the budget's allowance of 3.
        assert housing_fund["attempts"] == 3
        assert await retries(setup, "housing_fund") == before + 2

        # A slow bank's inquiry is PROCESSING at first and polled until DONE: its polls are
        # calls, not retries.
        before = await retries(setup, "bank")
        async with httpx.AsyncClient(base_url=setup.service.base_url, verify=CLIENT_TLS) as plain:
            slow = await plain.put("/sandbox/faults/bank", json={"mode": "slow", "latency_ms": 100})
            assert slow.status_code == 200
        try:
            bank = source(await verify(caseworker), "bank")
        finally:
            await fault(setup, "bank", None)
        assert bank["status"] in ("ok", "no_record")
        assert bank["attempts"] >= 2  # the inquiry and at least one poll
        assert await retries(setup, "bank") == before


async def retries(setup: Setup, connector: str) -> int:
    """`hedui_connector_retries_total` of one connector, from `/metrics`."""
    async with httpx.AsyncClient(base_url=setup.service.base_url, verify=CLIENT_TLS) as plain:
        text = (await plain.get("/metrics")).text
    found = re.search(rf'hedui_connector_retries_total\{{connector="{connector}"\}} (\S+)', text)
    assert found is not None
    return int(float(found.group(1)))


def statuses(metrics: str) -> dict[str, str]:
    """Each connector's current `hedui_connector_status` (the one series at 1)."""
    found: dict[str, list[str]] = {}
    pattern = r'hedui_connector_status\{connector="(\w+)",status="(\w+)"\} (\S+)'
    for name, status, value in re.findall(pattern, metrics):
        found.setdefault(name, [])
        if float(value) == 1:
            found[name].append(status)
    assert all(len(current) == 1 for current in found.values()), found
    return {name: current[0] for name, current in found.items()}
