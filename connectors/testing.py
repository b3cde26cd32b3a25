"""The conformance suite every connector's tests subclass (after airbyte's standard tests).

A connector's test module declares one class (`ParkingConformance` for a connector whose
partner may answer later, which adds `submit` and `collect`)::

    class TestVehicles(ConnectorConformance):
        connector = VehiclesConnector()
        scenarios = (ConnectorTestScenario(id="one car", household=..., partner=..., ...),)

        def partner_health(self, router: respx.MockRouter) -> None:
            router.get("/ping").respond(200, text="<Pong/>")

Scenarios describe the partner's wire exchange (respx routes relative to the config's
`base_url`) and the canonical records or the error expected. Every fetch is held to the
contract as the service holds it (`fetch_evidence`: each member asked about accounted for
exactly once), through a client that sends the household's consent and purpose headers as
the service's does (every request about the household must arrive with them). The
scenarios `omits_a_member` / `duplicates_a_member` are answers that must be refused. The
suite then checks the contract around them: config validation, `check`, retries, time
limits, error messages and the entry-point round trip. Faults are injected in front of the
routes, so the scenarios stay plain happy paths. This base class is not
collected; subclasses named `Test…` are.

The suite needs nothing but pytest and respx: its async tests run their own event loop, so
a plugin's pytest configuration needs no `asyncio_mode` nor any marker or fixture.
"""

# This module is a test suite shipped for connector authors: asserts are its point.
# ruff: noqa: S101

import asyncio
import functools
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, ParamSpec, Self

import httpx
import pytest
import respx
from pydantic import BaseModel, ConfigDict, ValidationError

from connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorError,
    MalformedResponse,
    Parked,
    ParkingConfig,
    ParkingConnector,
    PartnerRejected,
    PartnerUnavailable,
    ResponseTooLarge,
    collect_evidence,
    fetch_evidence,
    submit_evidence,
)
from connectors.http import (
    CONSENT_HEADER,
    IMPERSONAL_EXTENSION,
    PURPOSE_HEADER,
    PartnerClient,
    is_testing,
    set_testing,
)
from connectors.registry import GROUP, ConnectorRegistry
from schemas.evidence import Evidence, HouseholdQuery, Record, RequestContext
from schemas.identity import contains_id_number

P = ParamSpec("P")

PartnerSetup = Callable[[respx.MockRouter], object]
"""Registers a partner's routes on a router whose base URL is the connector's `base_url`."""

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]
Fault = Callable[[httpx.Request, Handler], Awaitable[httpx.Response]]
"""Answers one request instead of the partner (or alters the partner's answer)."""

GARBAGE_BODIES = (
    b"",
    b"\x00\xff not json <nor xml",
    b'{"truncated": [1, 2',
    b"[]",
    b'{"unexpected": true}',
    b"<Odd/>",
    "<html><body><h1>系统维护中</h1></body></html>".encode(),
)
GARBAGE_IDS = ("empty", "binary", "truncated", "json list", "json object", "other xml", "html")
PERSONAL_TEXT = "张三 balance 3000.00"


class ConnectorTestScenario(BaseModel):
    """One household, the partner's wire answer to it, and what `fetch` must make of it."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    id: str
    household: HouseholdQuery
    partner: PartnerSetup
    expected_records: tuple[Record, ...] = ()
    expected_error: type[ConnectorError] | None = None
    expected_calls: int | None = None

    @property
    def happy(self) -> bool:
        return self.expected_error is None and bool(self.expected_records)


# Faults ------------------------------------------------------------------------------------


def status(code: int, body: bytes = b"", content_type: str = "application/json") -> Fault:
    async def fault(request: httpx.Request, partner: Handler) -> httpx.Response:
        return httpx.Response(code, content=body, headers={"Content-Type": content_type})

    return fault


def raises(error: type[httpx.TransportError]) -> Fault:
    async def fault(request: httpx.Request, partner: Handler) -> httpx.Response:
        raise error("injected", request=request)

    return fault


def request_timeout(expected_s: float) -> Fault:
    """A request that times out, after checking it carried the per-request timeout."""

    async def fault(request: httpx.Request, partner: Handler) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        assert timeouts.get("read") == expected_s, f"request timeout {timeouts} != {expected_s}"
        raise httpx.ReadTimeout("injected", request=request)

    return fault


def hang() -> Fault:
    """A partner that never answers (the transport's own timeouts do not apply to mocks)."""

    async def fault(request: httpx.Request, partner: Handler) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    return fault


def garbage(body: bytes) -> Fault:
    """The partner's status and headers with a body that is not its documented format."""

    async def fault(request: httpx.Request, partner: Handler) -> httpx.Response:
        real = await partner(request)
        return httpx.Response(real.status_code, content=body, headers=real.headers)

    return fault


def oversized(size: int, *, declared: bool) -> Fault:
    """The partner's status with a body of `size` bytes, streamed in chunks; its length is
    announced in `Content-Length` only when `declared`."""

    async def fault(request: httpx.Request, partner: Handler) -> httpx.Response:
        real = await partner(request)
        headers = {"Content-Type": real.headers.get("Content-Type", "application/json")}
        if declared:
            headers["Content-Length"] = str(size)
        return httpx.Response(real.status_code, headers=headers, stream=_Spaces(size))

    return fault


class _Spaces(httpx.AsyncByteStream):
    def __init__(self, size: int) -> None:
        self.size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, self.size, 1024):
            yield b" " * min(1024, self.size - start)


class PartnerDouble:
    """A respx router standing in for the partner, with faults served before it."""

    def __init__(self, base_url: str, setup: PartnerSetup | None = None) -> None:
        self.router = respx.MockRouter(base_url=base_url, assert_all_called=False)
        if setup is not None:
            setup(self.router)
        self.requests: list[httpx.Request] = []
        self._next: deque[Fault] = deque()
        self._always: Fault | None = None

    def fail_next(self, *faults: Fault) -> Self:
        self._next.extend(faults)
        return self

    def fail_always(self, fault: Fault) -> Self:
        self._always = fault
        return self

    def client(self, context: RequestContext | None = None) -> PartnerClient:
        """A client as the service hands one: every request about the household carries
        `context` (its consent and purpose headers)."""
        return PartnerClient(transport=httpx.MockTransport(self.handle), context=context)

    def about_people(self) -> list[httpx.Request]:
        """The requests about the household (not marked `about_people=False`)."""
        return [r for r in self.requests if not r.extensions.get(IMPERSONAL_EXTENSION)]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        fault = self._next.popleft() if self._next else self._always
        if fault is None:
            return await self.router.async_handler(request)
        return await fault(request, self.router.async_handler)

    def sent(self) -> Counter[tuple[str, str, bytes]]:
        """How often each distinct request was sent: a retry sends the same one again."""
        return Counter(signature(request) for request in self.requests)


def signature(request: httpx.Request) -> tuple[str, str, bytes]:
    return request.method, str(request.url), request.content


def assert_context_sent(partner: PartnerDouble, context: RequestContext) -> None:
    """Every request about the household carried `context`; none about nobody did."""
    asked = partner.about_people()
    assert asked, "no request about the household reached the partner"
    for request in asked:
        sent = (request.headers.get(CONSENT_HEADER), request.headers.get(PURPOSE_HEADER))
        assert sent == (context.consent_id, context.purpose), (
            f"{request.method} {request.url.path} carried {sent}: send every request through "
            "the client fetch() is handed, never a client of your own"
        )
    for request in partner.requests:
        if request not in asked:
            assert CONSENT_HEADER not in request.headers, "a token request named a household"


@dataclass
class FetchRun:
    evidence: Evidence | None
    error: ConnectorError | None
    attempts: int
    partner: PartnerDouble
    elapsed_s: float


async def run_fetch(
    connector: Connector,
    household: HouseholdQuery,
    partner: PartnerDouble,
    config: ConnectorConfig,
) -> FetchRun:
    """`fetch` against `partner`, held to the contract and counting attempts as the service does."""
    evidence, error = None, None
    started = time.perf_counter()
    client = partner.client(household.context)
    try:
        async with client:
            evidence = await fetch_evidence(connector, household, config, client)
    except ConnectorError as caught:
        error = caught
    attempts = client.requests_sent
    run = FetchRun(evidence, error, attempts, partner, time.perf_counter() - started)
    assert run.attempts == len(partner.requests), "every HTTP request counts as one attempt"
    return run


@contextmanager
def retry_testing(enabled: bool) -> Iterator[None]:
    previous = is_testing()
    set_testing(enabled)
    try:
        yield
    finally:
        set_testing(previous)


def own_loop(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test on an event loop of its own.

    The suite runs its coroutines itself, so a connector's test module needs no
    pytest-asyncio, no `asyncio_mode` and no marker: plain pytest collects it.
    """

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        # A loop factory: the runner then leaves the thread's current event loop alone.
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            runner.run(test(*args, **kwargs))

    return run


# The suite ---------------------------------------------------------------------------------


class ConnectorConformance:
    connector: ClassVar[Connector]
    scenarios: ClassVar[tuple[ConnectorTestScenario, ...]]
    config_values: ClassVar[dict[str, Any]] = {}
    """Fields beyond `base_url` the connector's tests configure (e.g. short poll intervals)."""
    omits_a_member: ClassVar[ConnectorTestScenario | str]
    """A partner answer that leaves out a member asked about, which must be a
    `MalformedResponse`; or, when the partner's format cannot express one (it lists only
    hits, or asks one member per call), the reason why not."""
    duplicates_a_member: ClassVar[ConnectorTestScenario | str]
    """A partner answer that covers one member twice (a `MalformedResponse`), or why the
    partner's format cannot express one."""

    def partner_health(self, router: respx.MockRouter) -> None:
        """Register the partner's healthy answer to `check`."""
        raise NotImplementedError

    # Helpers ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://partner.test/{self.connector.name}"

    def make_config(self, **overrides: Any) -> ConnectorConfig:
        return self.connector.Config(base_url=self.base_url, **{**self.config_values, **overrides})

    @property
    def primary(self) -> ConnectorTestScenario:
        """The first scenario with records: the one faults are injected into."""
        return next(scenario for scenario in self.scenarios if scenario.happy)

    async def run_fetch(
        self,
        scenario: ConnectorTestScenario,
        *faults: Fault,
        always: Fault | None = None,
        **config: Any,
    ) -> FetchRun:
        partner = PartnerDouble(self.base_url, scenario.partner).fail_next(*faults)
        if always is not None:
            partner.fail_always(always)
        return await run_fetch(
            self.connector, scenario.household, partner, self.make_config(**config)
        )

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "scenario" in metafunc.fixturenames:
            metafunc.parametrize(
                "scenario", self.scenarios, ids=[scenario.id for scenario in self.scenarios]
            )

    @pytest.fixture(autouse=True)
    def _no_retry_waits(self) -> Iterator[None]:
        with retry_testing(True):
            yield

    # Identity and config ---------------------------------------------------------------

    def test_implements_the_protocol(self) -> None:
        assert isinstance(self.connector, Connector)
        assert self.connector.name
        assert self.connector.title
        assert self.connector.version
        assert issubclass(self.connector.Config, ConnectorConfig)

    def test_has_a_scenario_with_records(self) -> None:
        assert any(scenario.happy for scenario in self.scenarios)

    def test_config_accepts_base_url_alone(self) -> None:
        config = self.connector.Config(base_url=self.base_url + "/")
        assert config.base_url == self.base_url

    def test_config_requires_base_url(self) -> None:
        with pytest.raises(ValidationError, match="base_url"):
            self.connector.Config.model_validate(self.config_values)

    def test_config_rejects_unknown_field(self) -> None:
        with pytest.raises(ValidationError, match="surprise"):
            self.make_config(surprise=1)

    def test_entry_point_round_trip(self) -> None:
        points = entry_points(group=GROUP, name=self.connector.name)
        assert [point.load() for point in points] == [type(self.connector)]
        registry = ConnectorRegistry.from_entry_points(points)
        assert type(registry.get(self.connector.name)) is type(self.connector)

    # check -----------------------------------------------------------------------------

    @own_loop
    async def test_check_ok(self) -> None:
        partner = PartnerDouble(self.base_url, self.partner_health)
        async with partner.client() as client:
            result = await self.connector.check(self.make_config(), client)
        assert result.ok, result.detail
        assert result.latency_ms is not None
        assert result.latency_ms >= 0

    @own_loop
    async def test_check_sends_no_household_data(self) -> None:
        partner = PartnerDouble(self.base_url, self.partner_health)
        async with partner.client() as client:
            await self.connector.check(self.make_config(), client)
        assert partner.requests
        assert all(request.content == b"" for request in partner.requests)

    @own_loop
    async def test_check_unreachable_is_not_ok(self) -> None:
        partner = PartnerDouble(self.base_url).fail_always(raises(httpx.ConnectError))
        async with partner.client() as client:
            result = await self.connector.check(self.make_config(), client)
        assert not result.ok
        assert result.detail

    @own_loop
    async def test_check_partner_down_is_not_ok(self) -> None:
        partner = PartnerDouble(self.base_url, self.partner_health)
        partner.fail_always(status(503, b'{"code": "E503"}'))
        async with partner.client() as client:
            result = await self.connector.check(self.make_config(), client)
        assert not result.ok
        assert "503" in (result.detail or "")

    @own_loop
    async def test_check_unexpected_body_is_not_ok(self) -> None:
        partner = PartnerDouble(self.base_url, self.partner_health)
        partner.fail_always(garbage(b'{"unexpected": true}'))
        async with partner.client() as client:
            result = await self.connector.check(self.make_config(), client)
        assert not result.ok

    # fetch -----------------------------------------------------------------------------

    @own_loop
    async def test_fetch_scenario(self, scenario: ConnectorTestScenario) -> None:
        run = await self.run_fetch(scenario)
        if scenario.expected_error is not None:
            assert isinstance(run.error, scenario.expected_error), run.error
        else:
            assert run.error is None, run.error
            assert run.evidence is not None
            assert run.evidence.records == list(scenario.expected_records)
        if scenario.expected_calls is not None:
            assert run.attempts == scenario.expected_calls

    @own_loop
    async def test_fetch_requests_carry_the_consent_and_purpose(self) -> None:
        context = RequestContext(consent_id="AUTH-CONFORMANCE-7", purpose="tekun")
        household = self.primary.household.model_copy(update={"context": context})
        run = await self.run_fetch(self.primary.model_copy(update={"household": household}))
        assert run.error is None, run.error
        assert_context_sent(run.partner, context)

    @own_loop
    async def test_fetch_answer_omitting_a_member_is_malformed(self) -> None:
        await self._assert_malformed(self.omits_a_member)

    @own_loop
    async def test_fetch_answer_duplicating_a_member_is_malformed(self) -> None:
        await self._assert_malformed(self.duplicates_a_member)

    async def _assert_malformed(self, scenario: ConnectorTestScenario | str) -> None:
        if isinstance(scenario, str):
            assert scenario.strip(), "say why the partner's format cannot express this"
            pytest.skip(f"the partner's format cannot express it: {scenario}")
        run = await self.run_fetch(scenario)
        assert isinstance(run.error, MalformedResponse), run.error or run.evidence
        assert "member" in str(run.error), run.error

    @pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
    @own_loop
    async def test_fetch_answer_over_the_byte_limit_is_too_large(self, declared: bool) -> None:
        fault = oversized(64 * 1024, declared=declared)
        run = await self.run_fetch(self.primary, fault, max_response_bytes=4096)
        assert isinstance(run.error, ResponseTooLarge), run.error
        assert "response too large" in str(run.error)
        assert run.partner.sent()[signature(run.partner.requests[0])] == 1

    @own_loop
    async def test_fetch_more_records_than_the_limit_is_too_large(self) -> None:
        largest = max(self.scenarios, key=lambda scenario: len(scenario.expected_records))
        if len(largest.expected_records) < 2:
            pytest.skip("no scenario with two records or more")
        limit = len(largest.expected_records) - 1
        run = await self.run_fetch(largest, max_records=limit)
        assert isinstance(run.error, ResponseTooLarge), run.error
        assert str(run.error) == f"response too large (over {limit} records)"

    @own_loop
    async def test_fetch_empty_household_asks_nothing(self) -> None:
        empty = self.primary.household.model_copy(update={"members": ()})
        run = await self.run_fetch(self.primary.model_copy(update={"household": empty}))
        assert run.evidence == Evidence(answered=[])
        assert run.attempts == 0

    @pytest.mark.parametrize("body", GARBAGE_BODIES, ids=GARBAGE_IDS)
    @own_loop
    async def test_fetch_garbage_is_malformed_and_not_retried(self, body: bytes) -> None:
        run = await self.run_fetch(self.primary, garbage(body))
        assert isinstance(run.error, MalformedResponse), run.error
        assert run.partner.sent()[signature(run.partner.requests[0])] == 1

    @pytest.mark.parametrize("code", [500, 502, 503, 429])
    @own_loop
    async def test_fetch_retries_transient_status_then_succeeds(self, code: int) -> None:
        clean = await self.run_fetch(self.primary)
        run = await self.run_fetch(self.primary, status(code, b'{"code": 5000}'))
        assert run.error is None, run.error
        assert run.evidence is not None
        assert run.evidence.records == list(self.primary.expected_records)
        assert run.attempts == clean.attempts + 1

    @own_loop
    async def test_fetch_retries_transport_error_then_succeeds(self) -> None:
        clean = await self.run_fetch(self.primary)
        run = await self.run_fetch(self.primary, raises(httpx.ConnectError))
        assert run.error is None, run.error
        assert run.attempts == clean.attempts + 1

    @pytest.mark.parametrize("code", [400, 401, 403, 404])
    @own_loop
    async def test_fetch_does_not_retry_4xx(self, code: int) -> None:
        run = await self.run_fetch(self.primary, status(code, b'{"code": 4001}'))
        assert isinstance(run.error, PartnerRejected), run.error
        assert str(code) in str(run.error)
        assert run.partner.sent()[signature(run.partner.requests[0])] == 1

    @own_loop
    async def test_fetch_request_timeout_exhausts_attempts(self) -> None:
        config = {"max_attempts": 3, "request_timeout_s": 0.25}
        run = await self.run_fetch(self.primary, always=request_timeout(0.25), **config)
        assert isinstance(run.error, PartnerUnavailable), run.error
        assert max(run.partner.sent().values()) == 3

    @own_loop
    async def test_fetch_persistent_5xx_exhausts_attempts(self) -> None:
        run = await self.run_fetch(self.primary, always=status(503), max_attempts=4)
        assert isinstance(run.error, PartnerUnavailable), run.error
        assert max(run.partner.sent().values()) == 4

    @own_loop
    async def test_fetch_total_time_is_capped_when_partner_hangs(self) -> None:
        run = await self.run_fetch(self.primary, always=hang(), timeout_s=0.2)
        assert isinstance(run.error, PartnerUnavailable), run.error
        assert isinstance(run.error, TimeoutError)
        assert run.elapsed_s < 1.0

    @own_loop
    async def test_fetch_total_time_caps_retry_waits(self) -> None:
        with retry_testing(False):  # real backoff: the budget must end it, not the attempt cap
            run = await self.run_fetch(
                self.primary, always=status(503), max_attempts=10, timeout_s=0.25
            )
        assert isinstance(run.error, PartnerUnavailable), run.error
        assert run.elapsed_s < 0.25 + 0.5
        assert run.attempts < 10

    @own_loop
    async def test_fetch_errors_carry_no_personal_data(self) -> None:
        id_number = self.primary.household.id_numbers[0]
        body = f'{{"code": 5000, "message": "{id_number} {PERSONAL_TEXT}"}}'.encode()
        run = await self.run_fetch(self.primary, always=status(500, body), max_attempts=1)
        message = str(run.error)
        assert isinstance(run.error, PartnerUnavailable)
        assert id_number not in message
        assert PERSONAL_TEXT not in message


class ParkingConformance(ConnectorConformance):
    """The suite for a `ParkingConnector` (its partner may answer "accepted, collect later"):
    everything `ConnectorConformance` checks, and `submit`/`collect` besides."""

    collected: PartnerDouble
    """The partner double of the last collect."""
    parks: ClassVar[ConnectorTestScenario]
    """A partner that has accepted the question and not answered yet. `submit` must park
    it, and `collect` with the token must park it again; `collect` with that token against
    the first scenario with records (`primary`) must yield them."""

    def _parking(self) -> tuple[ParkingConnector, ConnectorTestScenario]:
        assert isinstance(self.connector, ParkingConnector), "needs submit() and collect()"
        return self.connector, self.parks

    async def _park(self, **config: Any) -> Parked:
        connector, parks = self._parking()
        partner = PartnerDouble(self.base_url, parks.partner)
        async with partner.client(parks.household.context) as client:
            answer = await submit_evidence(
                connector, parks.household, self.make_config(park_after_s=0, **config), client
            )
        assert isinstance(answer, Parked), answer
        return answer

    async def _collect(
        self, scenario: ConnectorTestScenario, token: str, *faults: Fault, **config: Any
    ) -> Evidence | Parked | ConnectorError:
        connector, _ = self._parking()
        partner = PartnerDouble(self.base_url, scenario.partner).fail_next(*faults)
        self.collected = partner
        try:
            async with partner.client(scenario.household.context) as client:
                return await collect_evidence(
                    connector, token, scenario.household, self.make_config(**config), client
                )
        except ConnectorError as error:
            return error

    def test_implements_the_parking_protocol(self) -> None:
        self._parking()
        assert issubclass(self.connector.Config, ParkingConfig)

    @own_loop
    async def test_submit_scenario_answers_as_fetch_does(
        self, scenario: ConnectorTestScenario
    ) -> None:
        connector, _ = self._parking()
        partner = PartnerDouble(self.base_url, scenario.partner)
        answer: Evidence | Parked | ConnectorError
        try:
            async with partner.client(scenario.household.context) as client:
                answer = await submit_evidence(
                    connector, scenario.household, self.make_config(), client
                )
        except ConnectorError as error:
            answer = error
        if scenario.expected_error is not None:
            assert isinstance(answer, scenario.expected_error), answer
            return
        assert isinstance(answer, Evidence), answer
        assert answer.records == list(scenario.expected_records)

    @own_loop
    async def test_submit_parks_an_answer_that_is_late(self) -> None:
        parked = await self._park()
        assert not contains_id_number(parked.token)
        assert parked.collect_after_s > 0

    @own_loop
    async def test_collect_carries_the_consent_and_purpose(self) -> None:
        """A collect runs long after its submit, in another job: it sends the context too."""
        parked = await self._park()
        answer = await self._collect(self.primary, parked.token)
        assert isinstance(answer, Evidence), answer
        assert_context_sent(self.collected, self.primary.household.context)

    @own_loop
    async def test_collect_parks_again_while_there_is_no_answer(self) -> None:
        parked = await self._park()
        _, parks = self._parking()
        again = await self._collect(parks, parked.token)
        assert isinstance(again, Parked), again

    @own_loop
    async def test_collect_yields_the_answer_once_it_is_there(self) -> None:
        parked = await self._park()
        answer = await self._collect(self.primary, parked.token)
        assert isinstance(answer, Evidence), answer
        assert answer.records == list(self.primary.expected_records)

    @pytest.mark.parametrize("body", GARBAGE_BODIES, ids=GARBAGE_IDS)
    @own_loop
    async def test_collect_garbage_is_malformed(self, body: bytes) -> None:
        parked = await self._park()
        answer = await self._collect(self.primary, parked.token, garbage(body))
        assert isinstance(answer, MalformedResponse), answer

    @own_loop
    async def test_collect_partner_down_is_transient_and_carries_no_personal_data(self) -> None:
        parked = await self._park()
        id_number = self.primary.household.id_numbers[0]
        body = f'{{"code": 5000, "message": "{id_number} {PERSONAL_TEXT}"}}'.encode()
        answer = await self._collect(self.primary, parked.token, status(503, body), max_attempts=1)
        assert isinstance(answer, PartnerUnavailable), answer
        assert id_number not in str(answer)
        assert PERSONAL_TEXT not in str(answer)
