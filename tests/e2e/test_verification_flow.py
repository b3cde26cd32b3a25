"""A household verified end to end: real server, real database, sandbox agencies over HTTP."""

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from tests.conftest import CLIENT_TLS, ClientFactory, running_service, service_settings
from tests.factories import make_id_number, member, verification_body

WAIT = {"Prefer": "wait=10"}


async def seed(http: httpx.AsyncClient, id_number: str, **sections: Any) -> None:
    response = await http.post("/sandbox/people", json={"id_number": id_number, **sections})
    assert response.status_code == 200, response.text


async def submit(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post("/v1/verifications", json=body, headers={**WAIT, **headers})


async def report_of(client: httpx.AsyncClient, verification_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/verifications/{verification_id}/report")
    assert response.status_code == 200, response.text
    return response.json()


async def test_healthz_reports_database_up(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "up"


async def test_poor_household_is_eligible_with_hand_computed_top_up(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """Pension 300 + declared 200 for an uncovered member: 500 / 2 = 250 < 640 → (640-250)×2."""
    applicant, spouse = make_id_number("530103"), make_id_number("530103")
    await seed(http, applicant, pension={"status": "receiving", "monthly_amount": 300})
    await seed(http, spouse)
    caseworker = await api_client(role="caseworker", region="53")
    body = verification_body(
        [member(applicant, "张三", "applicant", 300), member(spouse, "李四", "spouse", 200)],
        region_code="530103",
    )

    response = await submit(caseworker, body)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    report = await report_of(caseworker, response.json()["id"])
    assert report["complete"] is True
    assert report["policy"]["monthly_standard"] == "640.00"
    assert report["household"]["members"] == 2
    assert report["household"]["monthly_income"] == "500.00"
    assert report["household"]["per_capita_monthly_income"] == "250.00"
    assert report["recommendation"] == "eligible", report["findings"]
    assert report["benefit"]["monthly_amount"] == "780.00"
    assert {source["status"] for source in report["sources"]} <= {"ok", "no_record"}
    assert len(report["sources"]) == 6


async def test_payroll_member_is_ineligible_with_evidence_naming_the_source(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    applicant = make_id_number("530103")
    await seed(http, applicant, public_payroll={"employer": "某某局", "monthly_salary": 4500})
    caseworker = await api_client()
    response = await submit(
        caseworker, verification_body([member(applicant)], region_code="530103")
    )

    report = await report_of(caseworker, response.json()["id"])

    assert report["recommendation"] == "ineligible"
    disqualifying = [f for f in report["findings"] if f["severity"] == "disqualifying"]
    assert disqualifying
    assert any(e["source"] == "public_payroll" for f in disqualifying for e in f["evidence"])


async def test_source_down_makes_report_incomplete_and_never_eligible(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    applicant = make_id_number("530103")
    await seed(http, applicant)  # nothing anywhere: would be eligible if all sources answered
    await http.put("/sandbox/faults/bank", json={"mode": "down"})
    caseworker = await api_client()

    response = await submit(
        caseworker, verification_body([member(applicant)], region_code="530103")
    )

    assert response.status_code == 200
    report = await report_of(caseworker, response.json()["id"])
    assert report["complete"] is False
    assert report["recommendation"] == "review"
    bank = next(source for source in report["sources"] if source["source"] == "bank")
    assert bank["status"] == "error"


@pytest.mark.parametrize("mode", ["garbage", "error"])
async def test_misbehaving_source_is_never_eligible(
    http: httpx.AsyncClient, api_client: ClientFactory, mode: str
) -> None:
    applicant = make_id_number("530103")
    await seed(http, applicant)
    await http.put("/sandbox/faults/pensions", json={"mode": mode, "error_rate": 1.0})
    caseworker = await api_client()

    response = await submit(
        caseworker, verification_body([member(applicant)], region_code="530103")
    )

    verification = response.json()
    assert verification["status"] == "completed"
    pensions = next(s for s in verification["sources"] if s["source"] == "pensions")
    assert pensions["status"] == "error"
    assert verification["recommendation"] == "review"


HUNG_BUDGET_S = 1.5


@pytest.fixture(scope="module")
async def impatient(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """A caseworker of a service of its own, whose pensions partner has a short budget: a
    hang there is over in 1.5 s, not in the suite's 15."""
    settings = service_settings(
        fresh_database_url,
        Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db",
        connectors={"pensions": {"timeout_s": HUNG_BUDGET_S}},
    )
    engine = create_engine(fresh_database_url)
    async with create_session_factory(engine)() as session:
        _, token = await create_api_key(session, role=Role.caseworker, region="53")
        await session.commit()
    await engine.dispose()
    async with (
        running_service(settings) as live,
        httpx.AsyncClient(
            base_url=live.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            verify=CLIENT_TLS,
        ) as client,
    ):
        yield client


async def test_hung_source_times_out_and_is_never_eligible(
    impatient: httpx.AsyncClient,
) -> None:
    applicant = make_id_number("530103")
    await seed(impatient, applicant)
    await impatient.put("/sandbox/faults/pensions", json={"mode": "hang"})
    try:
        response = await submit(
            impatient, verification_body([member(applicant)], region_code="530103")
        )
    finally:
        await impatient.delete("/sandbox/faults/pensions")

    verification = response.json()
    assert verification["status"] == "completed"
    pensions = next(s for s in verification["sources"] if s["source"] == "pensions")
    assert pensions["status"] == "timeout"
    assert verification["recommendation"] == "review"


async def test_invalid_id_number_is_422_and_nothing_is_stored(api_client: ClientFactory) -> None:
    caseworker = await api_client()
    good = make_id_number("530103")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    reference = "case-invalid-id"

    response = await caseworker.post(
        "/v1/verifications",
        json=verification_body([member(good), member(bad, "李四", "spouse")], reference=reference),
    )

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"][0]["loc"] == ["body", "members", 1, "id_number"]
    assert bad not in response.text
    listed = await caseworker.get("/v1/verifications", params={"reference": reference})
    assert listed.json()["items"] == []


async def test_another_regions_key_gets_404(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    applicant = make_id_number("530103")
    await seed(http, applicant)
    yunnan = await api_client(role="caseworker", region="53")
    jiangxi = await api_client(role="caseworker", region="36")
    created = await yunnan.post(
        "/v1/verifications", json=verification_body([member(applicant)], region_code="530103")
    )

    seen_from_jiangxi = await jiangxi.get(f"/v1/verifications/{created.json()['id']}")
    unknown = await jiangxi.get("/v1/verifications/no-such-id")

    assert seen_from_jiangxi.status_code == 404
    assert seen_from_jiangxi.json()["detail"] == unknown.json()["detail"]
    report = await jiangxi.get(f"/v1/verifications/{created.json()['id']}/report")
    assert report.status_code == 404


async def test_repeated_idempotency_key_returns_the_first_verification(
    api_client: ClientFactory,
) -> None:
    caseworker = await api_client()
    body = verification_body(
        [member(make_id_number("530103"))], region_code="530103", reference="case-idem"
    )
    headers = {"Idempotency-Key": "idem-key-1"}

    first = await caseworker.post("/v1/verifications", json=body, headers=headers)
    second = await caseworker.post("/v1/verifications", json=body, headers=headers)
    changed = await caseworker.post(
        "/v1/verifications", json={**body, "reference": "case-other"}, headers=headers
    )

    assert first.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert changed.status_code == 422
    listed = await caseworker.get("/v1/verifications", params={"reference": "case-idem"})
    assert [item["id"] for item in listed.json()["items"]] == [first.json()["id"]]


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("Idempotency-Key", ["key-a", "key-b"]),
        ("Content-Type", ["application/json", "text/plain"]),
        ("Content-Type", ["text/plain", "application/json"]),
    ],
    ids=["two-keys", "json-then-text", "text-then-json"],
)
async def test_a_header_that_says_one_thing_sent_twice_is_refused_and_nothing_is_stored(
    api_client: ClientFactory, name: str, values: list[str]
) -> None:
    """A retry carrying either key would otherwise decide whether it is a retry; the first
    of two media types would be read, and a proxy might act on the other. (Two
    `Authorization` headers are a 401: tests/e2e/test_hostile_callers.py.)"""
    caseworker = await api_client()
    reference = f"case-twice-{name.lower()}-{values[0]!s:.4}"
    body = verification_body(
        [member(make_id_number("530103"))], region_code="530103", reference=reference
    )
    headers = [(name, value) for value in values]
    if name != "Content-Type":
        headers.append(("Content-Type", "application/json"))
    request = caseworker.build_request("POST", "/v1/verifications", content=json.dumps(body))
    raw = [(k, v) for k, v in request.headers.multi_items() if k.lower() != name.lower()]
    request.headers = httpx.Headers(raw + headers)

    answer = await caseworker.send(request)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert error["loc"] == ["header", name]
    assert error["msg"] == "is given more than once; give it once"
    listed = await caseworker.get("/v1/verifications", params={"reference": reference})
    assert listed.json()["items"] == []


@pytest.mark.parametrize("path", ["/v1/verifications", "/v1/batches?reference=gz"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_a_compressed_body_is_415_naming_content_encoding_and_nothing_is_stored(
    api_client: ClientFactory, path: str, encoding: str
) -> None:
    """Read as it came, a gzipped body was a 422 at `body.1` or a batch of invalid lines."""
    caseworker = await api_client()
    reference = f"gz-{encoding}-{path.count('batches')}"
    body = verification_body(
        [member(make_id_number("530103"))], region_code="530103", reference=reference
    )
    answer = await caseworker.post(
        path.replace("reference=gz", f"reference={reference}"),
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )

    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["loc"] == ["header", "content-encoding"]
    batches = await caseworker.get("/v1/batches", params={"reference": reference})
    assert batches.json()["items"] == []
    listed = await caseworker.get("/v1/verifications", params={"reference": reference})
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    ("content_type", "refused"),
    [
        ("application/json; charset=latin-1", True),
        ('application/json; charset="UTF-16"', True),
        ("application/json;charset=utf-7", True),
        ("application/json; charset=UTF-8", False),
        ('application/json; charset="utf-8"', False),
        ("application/json; charset=utf-8; charset=utf-16", True),
    ],
)
async def test_a_body_in_another_charset_than_utf_8_is_415_and_nothing_is_stored(
    api_client: ClientFactory, content_type: str, refused: bool
) -> None:
    """JSON is read as UTF-8 whatever the header says: a title sent in UTF-7 was stored
    as its encoded text. Another charset is refused, naming the header."""
    caseworker = await api_client()
    reference = f"cs-{zlib.crc32(content_type.encode())}"
    body = verification_body(
        [member(make_id_number("530103"))], region_code="530103", reference=reference
    )
    answer = await caseworker.post(
        "/v1/verifications",
        content=json.dumps(body).encode(),
        headers={"Content-Type": content_type},
    )

    listed = await caseworker.get("/v1/verifications", params={"reference": reference})
    if refused:
        assert answer.status_code == 415, answer.text
        assert answer.json()["errors"][0]["loc"] == ["header", "content-type"]
        assert listed.json()["items"] == []
    else:
        assert answer.status_code == 202, answer.text
        assert len(listed.json()["items"]) == 1


async def test_no_full_id_number_in_any_response_or_log_line(
    http: httpx.AsyncClient, api_client: ClientFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    applicant, child = make_id_number("530103"), make_id_number("530103", "20150301")
    await seed(
        http,
        applicant,
        bank_accounts=[{"bank": "中国工商银行", "account": "6222020200112233", "balance": 3000}],
        vehicles=[
            {"plate": "云A12345", "type": "car", "registered_on": "2019-05-01", "value": 85000}
        ],
    )
    await seed(http, child)
    caseworker = await api_client()
    body = verification_body(
        [member(applicant), member(child, "张小", "child")], region_code="530103"
    )

    created = await submit(caseworker, body)
    verification_id = created.json()["id"]
    responses = [
        created,
        await caseworker.get(f"/v1/verifications/{verification_id}"),
        await caseworker.get(f"/v1/verifications/{verification_id}/report"),
        await caseworker.get("/v1/verifications"),
    ]

    logged = "".join(capfd.readouterr())
    assert "run_finished" in logged  # the check below reads real log lines
    texts = [*(response.text for response in responses), logged]
    for text in texts:
        assert applicant not in text
        assert child not in text
        assert "6222020200112233" not in text
    detail = responses[1].json()
    assert detail["members"][0]["id_number"] == applicant[:6] + "********" + applicant[-4:]
    assert detail["members"][0]["name"] == "张*"


async def test_report_is_409_until_completed(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    applicant = make_id_number("530103")
    await seed(http, applicant)
    await http.put("/sandbox/faults/vehicles", json={"mode": "slow", "latency_ms": 400})
    caseworker = await api_client()

    created = await caseworker.post(
        "/v1/verifications", json=verification_body([member(applicant)], region_code="530103")
    )
    early = await caseworker.get(f"/v1/verifications/{created.json()['id']}/report")

    assert created.status_code == 202
    assert early.status_code == 409
    assert early.headers["content-type"].startswith("application/problem+json")
    assert early.headers["retry-after"] == "1"  # when to look again
    verification_id = created.json()["id"]
    for _ in range(100):
        current = (await caseworker.get(f"/v1/verifications/{verification_id}")).json()
        if current["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    vehicles = next(s for s in current["sources"] if s["source"] == "vehicles")
    assert vehicles["duration_ms"] >= 400
    late = await caseworker.get(f"/v1/verifications/{verification_id}/report")
    assert late.status_code == 200


async def test_concurrent_requests_with_one_idempotency_key_make_one_verification(
    api_client: ClientFactory,
) -> None:
    caseworker = await api_client()
    body = verification_body(
        [member(make_id_number("530103"))], region_code="530103", reference="case-race"
    )
    headers = {"Idempotency-Key": "race-key", **WAIT}

    responses = await asyncio.gather(
        *(caseworker.post("/v1/verifications", json=body, headers=headers) for _ in range(5))
    )

    assert {response.status_code for response in responses} <= {200, 202}
    assert len({response.json()["id"] for response in responses}) == 1
    listed = await caseworker.get("/v1/verifications", params={"reference": "case-race"})
    assert len(listed.json()["items"]) == 1
    assert listed.json()["items"][0]["status"] == "completed"
