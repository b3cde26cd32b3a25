"""The declarative tax connector passes the same conformance suite as the built-ins."""

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from connectors.base import MalformedResponse, ResponseTooLarge, fetch_evidence
from connectors.declarative import ConnectorSpec, SpecInvalid, build_connector, validate_spec
from connectors.http import PartnerClient
from connectors.testing import ConnectorConformance, ConnectorTestScenario, PartnerSetup
from schemas.evidence import Evidence, TaxedIncomeRecord
from tests.connectors.declarative.specs import example
from tests.connectors.support import FOREIGN, A, B, household


def partner(known: dict[str, int], *, drop: int = 0, repeat: bool = False) -> PartnerSetup:
    """A tax agency that knows `known` (fen); it can leave out or repeat a taxpayer."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked = [item["sfzh"] for item in json.loads(request.content)["taxpayers"]]
        asked = asked[drop:] + (asked[:1] if repeat else [])
        results = [
            {"sfzh": sfzh, "found": True, "taxYear": 2025, "taxableIncome": known[sfzh]}
            if sfzh in known
            else {"sfzh": sfzh, "found": False}
            for sfzh in asked
        ]
        return httpx.Response(200, json={"retCode": "000000", "results": results})

    return lambda router: router.post("/income/batch").mock(side_effect=answer)


def raw(body: object) -> PartnerSetup:
    return lambda router: router.post("/income/batch").respond(200, json=body)


async def fetch_one_answer(spec: dict[str, Any], answer: PartnerSetup) -> Evidence:
    """What the connector of `spec` makes of one household member's answer `answer`."""
    connector = build_connector(validate_spec(spec), "1")
    config = connector.default_config()
    with respx.mock(base_url=config.base_url) as router:
        answer(router)
        async with PartnerClient() as client:
            return await fetch_evidence(connector, household(A), config, client)


class TestDeclarativeTax(ConnectorConformance):
    connector = build_connector(validate_spec(example("tax")), "1")
    scenarios = (
        ConnectorTestScenario(
            id="taxed and untaxed",
            household=household(A, B),
            partner=partner({A: 4_800_050, B: 1_200_000}),
            expected_records=(
                TaxedIncomeRecord(id_number=A, year=2025, annual_amount=Decimal("48000.50")),
                TaxedIncomeRecord(id_number=B, year=2025, annual_amount=Decimal("12000.00")),
            ),
            expected_calls=1,
        ),
        ConnectorTestScenario(id="no record", household=household(A, B), partner=partner({})),
        ConnectorTestScenario(
            id="partner error code",
            household=household(A),
            partner=raw({"retCode": "500001", "results": []}),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="fractional fen",
            household=household(A),
            partner=raw(
                {
                    "retCode": "000000",
                    "results": [{"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 1.5}],
                }
            ),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="an amount beyond any household's",
            household=household(A),
            partner=lambda router: router.post("/income/batch").respond(
                200,
                content=(
                    json.dumps(
                        {"retCode": "000000", "results": [{"sfzh": A, "found": True}]}
                    ).replace(
                        '"found": true',
                        '"found": true, "taxYear": 2025, "taxableIncome": 1e999999999',
                    )
                ).encode(),
                headers={"content-type": "application/json"},
            ),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="an amount of 10^20 fen",
            household=household(A),
            partner=raw(
                {
                    "retCode": "000000",
                    "results": [
                        {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 10**20}
                    ],
                }
            ),
            expected_error=MalformedResponse,
        ),
        ConnectorTestScenario(
            id="an amount written as a plain string",
            household=household(A),
            partner=raw(
                {
                    "retCode": "000000",
                    "results": [
                        {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": "4800050"}
                    ],
                }
            ),
            expected_records=(
                TaxedIncomeRecord(id_number=A, year=2025, annual_amount=Decimal("48000.50")),
            ),
            expected_calls=1,
        ),
        *(
            ConnectorTestScenario(
                id=f"an amount written {written!r}",
                household=household(A),
                partner=raw(
                    {
                        "retCode": "000000",
                        "results": [
                            {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": written}
                        ],
                    }
                ),
                expected_error=MalformedResponse,
            )
            for written in ("1e3", "1_000", "\uff11\uff10\uff10\uff10", " 1000", "")
        ),
        ConnectorTestScenario(
            id="a foreign taxpayer",
            household=household(A),
            partner=raw({"retCode": "000000", "results": [{"sfzh": FOREIGN, "found": False}]}),
            expected_error=MalformedResponse,
        ),
    )
    omits_a_member = ConnectorTestScenario(
        id="omits", household=household(A, B), partner=partner({}, drop=1)
    )
    duplicates_a_member = ConnectorTestScenario(
        id="duplicates", household=household(A, B), partner=partner({}, repeat=True)
    )

    def partner_health(self, router: respx.MockRouter) -> None:
        router.get("/health").respond(200, json={"retCode": "000000"})

    def test_entry_point_round_trip(self) -> None:
        """Declarative connectors have no entry point: the spec is their round trip."""
        spec = self.connector.spec
        again = build_connector(validate_spec(spec.model_dump(mode="json", by_alias=True)), "1")
        assert again.spec == spec
        assert again.name == self.connector.name


@pytest.mark.parametrize("answer", [{"retCode": "000000"}, {"retCode": "000000", "results": None}])
@pytest.mark.parametrize("lists", ["hits_only", "every_member"])
async def test_an_answer_without_its_list_is_malformed_not_no_record(
    answer: dict[str, object], lists: str
) -> None:
    """A maintenance notice, `{}`: no list at all is no answer, whatever the mode (a partner
    that found nothing says so with an empty list)."""
    spec = example("tax")
    spec["mode"]["lists"] = lists
    if lists == "hits_only":
        del spec["response"]["answers"]
    connector = build_connector(validate_spec(spec), "1")
    config = connector.default_config()
    with respx.mock(base_url=config.base_url) as router:
        router.post("/income/batch").respond(200, json=answer)
        async with PartnerClient() as client:
            with pytest.raises(MalformedResponse, match="selected nothing"):
                await fetch_evidence(connector, household(A), config, client)


@pytest.mark.parametrize(
    ("results", "found"), [([], True), (None, True), ([{"sfzh": A, "found": True}], False)]
)
async def test_a_not_found_answer_that_lists_records_is_malformed(
    results: object, found: bool
) -> None:
    """`response.not_found` says the partner holds nothing; an answer it matches that lists
    records anyway contradicts itself: never "no record"."""
    spec = example("tax")
    spec["response"]["not_found"] = "retCode == '000404'"
    spec["response"]["error"] = "retCode != '000000' && retCode != '000404'"
    hit = [{**item, "taxYear": 2025, "taxableIncome": 9_000_000} for item in results or ()]
    answer = raw({"retCode": "000404", "results": hit})
    if found:
        evidence = await fetch_one_answer(spec, answer)
        assert (evidence.records, evidence.answered) == ([], [A])
    else:
        with pytest.raises(MalformedResponse, match="not_found matched"):
            await fetch_one_answer(spec, answer)


async def test_pages_past_max_records_stop_as_they_come() -> None:
    """A partner that pages on and on: the fetch stops once the records gathered pass
    `max_records`, not after every page has been read into memory."""
    spec = example("tax")
    spec["mode"]["lists"] = "hits_only"
    del spec["response"]["answers"]
    spec["pagination"] = {"type": "cursor", "param": "c", "next": "next", "max_pages": 100}
    connector = build_connector(validate_spec(spec), "1")
    config = connector.default_config().model_copy(update={"max_records": 25})
    hit = {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 100}
    with respx.mock(base_url=config.base_url) as router:
        route = router.post("/income/batch").respond(
            200, json={"retCode": "000000", "results": [hit] * 10, "next": "more"}
        )
        async with PartnerClient() as client:
            with pytest.raises(ResponseTooLarge, match="over 25 records"):
                await fetch_evidence(connector, household(A), config, client)
    assert route.call_count == 3  # 10, 20, then 30 > 25: no fourth page


@pytest.mark.parametrize("cursor", ["{A}", "after-{A}", "{A_apart}"])
async def test_a_cursor_that_holds_an_id_number_is_never_sent_in_a_url(cursor: str) -> None:
    """The cursor goes in the next page's query string: a partner that pages by the last
    person's ID number makes the answer malformed (source error, report review), and the
    number never reaches a URL."""
    spec = example("tax")
    spec["mode"]["lists"] = "hits_only"
    del spec["response"]["answers"]
    spec["pagination"] = {"type": "cursor", "param": "c", "next": "next", "max_pages": 5}
    connector = build_connector(validate_spec(spec), "1")
    config = connector.default_config()
    hit = {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 100}
    following = cursor.format(A=A, A_apart=f"{A[:6]}-{A[6:14]}-{A[14:]}")
    with respx.mock(base_url=config.base_url) as router:
        route = router.post("/income/batch").respond(
            200, json={"retCode": "000000", "results": [hit], "next": following}
        )
        async with PartnerClient() as client:
            with pytest.raises(MalformedResponse, match="never sent in a URL"):
                await fetch_evidence(connector, household(A), config, client)
    assert route.call_count == 1
    assert all("?" not in str(call.request.url) for call in route.calls)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"access_token": "abc", "expires_in": 10**400}, None),  # kept a year, no crash
        ({"access_token": "абв", "expires_in": 600}, "not header text"),
        ({"access_token": "a b", "expires_in": 600}, "not header text"),
        ({"access_token": "abc", "expires_in": -5}, "no valid expires_in"),
    ],
)
def test_a_token_endpoints_odd_answers_are_malformed_or_bounded(
    answer: dict[str, object], why: str | None
) -> None:
    from connectors.declarative.connector import MAX_TOKEN_LIFE_S, _parse_token

    body = json.dumps(answer).encode()
    if why is None:
        assert _parse_token(body) == ("abc", float(MAX_TOKEN_LIFE_S))
    else:
        with pytest.raises(MalformedResponse, match=why):
            _parse_token(body)


@pytest.mark.parametrize(("padding", "off_loop"), [(0, False), (100_000, True)])
async def test_a_large_answers_expressions_run_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, padding: int, off_loop: bool
) -> None:
    """Within their budget, a large answer's expressions may take seconds: in a thread, the
    event loop serves every other request meanwhile."""
    import threading

    from connectors.declarative.connector import OFF_LOOP_BYTES, DeclarativeConnector

    connector = build_connector(validate_spec(example("tax")), "1")
    config = connector.default_config()
    threads: list[int] = []
    read_page = DeclarativeConnector._read_page

    def recording(self: DeclarativeConnector, *args: object) -> object:
        threads.append(threading.get_ident())
        return read_page(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(DeclarativeConnector, "_read_page", recording)
    hit = {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 100}
    answer = {"retCode": "000000", "results": [hit], "pad": "x" * padding}
    assert (len(json.dumps(answer)) > OFF_LOOP_BYTES) is off_loop
    with respx.mock(base_url=config.base_url) as router:
        router.post("/income/batch").respond(200, json=answer)
        async with PartnerClient() as client:
            evidence = await fetch_evidence(connector, household(A), config, client)
    assert len(evidence.records) == 1
    assert (threads[0] != threading.get_ident()) is off_loop


def _securities(pagination: dict[str, object]) -> dict[str, object]:
    """A securities register that lists every holding of the members asked, page by page,
    sold ones too: `records` keeps the held ones."""
    spec = example("tax")
    spec["mode"]["lists"] = "hits_only"
    del spec["response"]["answers"]
    spec["response"]["records"] = "results[?status=='held']"
    spec["pagination"] = pagination
    return spec


HOLDINGS = [
    {"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": amount, "status": status}
    for amount, status in ((1_000_000, "held"), (5, "sold"), (6, "sold"), (2_500_000, "held"))
]


@pytest.mark.parametrize(
    "pagination",
    [
        {"type": "offset", "param": "offset", "size_param": "limit", "size": 2},
        {"type": "page", "param": "page", "size_param": "size", "size": 2},
    ],
)
def test_paging_by_count_needs_the_pages_rows_when_records_filter_them(
    pagination: dict[str, object],
) -> None:
    """Counting the held records would take a page of sold ones for the last: the pages
    after it, and what they hold, would never be read."""
    with pytest.raises(SpecInvalid) as refused:
        validate_spec(_securities(pagination))
    assert [problem.pointer for problem in refused.value.problems] == ["/pagination/rows"]

    assert validate_spec(_securities({**pagination, "rows": "results"}))
    plain = _securities(pagination)
    plain["response"]["records"] = "results"
    assert validate_spec(plain)  # a plain path: its records are the page's rows


@pytest.mark.parametrize(
    ("pagination", "page_of", "calls"),
    [
        (
            {"type": "offset", "param": "offset", "size_param": "limit", "size": 2},
            lambda query: int(query["offset"]) // 2,
            3,  # the third page is short: the last
        ),
        (
            {"type": "page", "param": "page", "size_param": "size", "size": 2, "start": 0},
            lambda query: int(query["page"]),
            4,  # with no total_pages, until a page holds no row
        ),
    ],
    ids=["offset", "page"],
)
async def test_pages_are_read_to_the_end_whatever_records_filter(
    pagination: dict[str, object], page_of: Any, calls: int
) -> None:
    """Page 2 holds only sold shares: no record, and still not the last page."""
    spec = _securities({**pagination, "rows": "results"})
    connector = build_connector(validate_spec(spec), "1")
    config = connector.default_config()
    pages = [HOLDINGS[0:2], HOLDINGS[1:3], HOLDINGS[3:4], []]

    def answer(request: httpx.Request) -> httpx.Response:
        page = page_of(dict(request.url.params))
        return httpx.Response(200, json={"retCode": "000000", "results": pages[page]})

    with respx.mock(base_url=config.base_url) as router:
        route = router.post("/income/batch").mock(side_effect=answer)
        async with PartnerClient() as client:
            evidence = await fetch_evidence(connector, household(A), config, client)
    assert [record.annual_amount for record in evidence.records] == [  # type: ignore[attr-defined]
        Decimal("10000.00"),
        Decimal("25000.00"),
    ]
    assert route.call_count == calls


async def test_a_stored_spec_that_cannot_count_its_pages_asks_nothing() -> None:
    """Stored before `pagination.rows` was required: its source is an error (the report
    `review`), never the first page's records taken for all of them."""
    spec = ConnectorSpec.model_validate(
        _securities({"type": "offset", "param": "offset", "size": 2})
    )
    connector = build_connector(spec, "1")
    config = connector.default_config()
    with respx.mock(base_url=config.base_url, assert_all_called=False) as router:
        route = router.post("/income/batch").respond(200, json={"retCode": "000000"})
        async with PartnerClient() as client:
            with pytest.raises(MalformedResponse, match=r"set pagination\.rows"):
                await fetch_evidence(connector, household(A), config, client)
    assert route.call_count == 0


def _xml_partner(health: dict[str, object]) -> Any:
    spec = example("tax")
    spec["response"]["format"] = "xml"
    spec["response"]["error"] = "Result.code != '0'"
    spec["health"] = health
    return build_connector(validate_spec(spec), "1")


@pytest.mark.parametrize(
    ("health", "body", "ok"),
    [
        ({"path": "/health", "format": "json", "expect": "status == 'up'"}, b'{"status":"up"}', 1),
        ({"path": "/health", "format": "json", "expect": "status == 'up'"}, b'{"status":"x"}', 0),
        ({"path": "/health"}, b'{"status": "up"}', 1),  # no expect: any 2xx, unread
        ({"path": "/health", "expect": "Pong"}, b'{"status": "up"}', 0),  # read as XML
        ({"path": "/health", "expect": "Pong.\"@status\" == 'up'"}, b'<Pong status="up"/>', 1),
    ],
)
async def test_an_xml_partners_health_is_read_as_its_health_format(
    health: dict[str, object], body: bytes, ok: int
) -> None:
    """A partner answering in XML whose status page is JSON is not `down` for it."""
    connector = _xml_partner(health)
    config = connector.default_config()
    with respx.mock(base_url=config.base_url) as router:
        router.get("/health").respond(200, content=body)
        async with PartnerClient() as client:
            checked = await connector.check(config, client)
    assert checked.ok is bool(ok), checked.detail


@pytest.mark.parametrize(
    ("body", "found"),
    [(b'<Result code="0"/>', True), (b"<Result/>", True), (b"<Notice>down</Notice>", False)],
)
async def test_the_documented_xml_records_expression_tells_no_hits_from_another_answer(
    body: bytes, found: bool
) -> None:
    """docs/connectors.md: an XML answer with no hits has no child list at all."""
    spec = example("tax")
    spec["mode"] = {"type": "batch", "max_items": 20, "member": '"@sfzh"', "lists": "hits_only"}
    spec["response"] = {
        "format": "xml",
        "records": "Result != `null` && (Result.Item || `[]`)",
        "kind": "taxed_income",
        "fields": {"year": {"expr": '"@year"'}, "annual_amount": {"expr": '"@amount"'}},
    }

    def answer(router: respx.MockRouter) -> None:
        router.post("/income/batch").respond(200, content=body)

    if found:
        evidence = await fetch_one_answer(spec, answer)
        assert (evidence.records, evidence.answered) == ([], [A])
    else:
        with pytest.raises(MalformedResponse, match="did not select a list"):
            await fetch_one_answer(spec, answer)


def _per_member_tax(member: str | None) -> dict[str, Any]:
    spec = example("tax")
    spec["request"]["body"] = {"type": "json", "template": {"taxpayers": [{"sfzh": "{id_number}"}]}}
    spec["mode"] = {"type": "per_member"} | ({"member": member} if member else {})
    del spec["response"]["answers"]
    return spec


@pytest.mark.parametrize("member", [None, "sfzh"], ids=["no member expression", "mode.member"])
async def test_per_member_a_record_about_someone_not_asked_is_malformed_given_mode_member(
    member: str | None,
) -> None:
    """A partner asked about A answers with B's income: with `mode.member` the answer is
    malformed (the source `error`, the report incomplete); without it, the connector cannot
    tell, and the record is taken as A's, as the docs say."""
    answer = raw(
        {
            "retCode": "000000",
            "results": [{"sfzh": B, "found": True, "taxYear": 2025, "taxableIncome": 100}],
        }
    )
    spec = _per_member_tax(member)
    if member is None:
        evidence = await fetch_one_answer(spec, answer)
        assert [record.id_number for record in evidence.records] == [A]
    else:
        with pytest.raises(MalformedResponse, match="someone not asked"):
            await fetch_one_answer(spec, answer)
        own = raw(
            {
                "retCode": "000000",
                "results": [{"sfzh": A, "found": True, "taxYear": 2025, "taxableIncome": 100}],
            }
        )
        evidence = await fetch_one_answer(spec, own)
        assert [record.id_number for record in evidence.records] == [A]
