"""How many SQL statements one verification costs, end to end, on each database.

A 3-person household is submitted over HTTP with `Prefer: wait` to a service of its own
(the sandbox agencies answer every source) and every statement the service sends while
serving that request and running its verification is counted: the request's and the
run's (the run is started by the request, so both carry its request id). The periodic
work of the process (sweeps, refreshes) is left out, since it does not belong to a
verification. Every statement costs SQLAlchemy's execution path and a round trip to the
database (on SQLite, a hop to the driver's thread), so the bound here only goes down.

Answers that arrive while an earlier one is being written are written together, in one
statement, so how many statements store them depends on how the answers are spread in
time: between one (all together) and six (each on its own). They are bounded apart: at
most one per transaction; every other statement is bounded in number.
"""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.conftest import CLIENT_TLS, running_service, service_settings
from tests.factories import make_id_number, member, verification_body
from tests.stored import caseworker_token

STATEMENTS_BESIDES_SETTLING = 7
"""The most statements one verification may cost (request and run), besides those that
store its sources' answers."""

SETTLING = "UPDATE source_results"


@contextmanager
def statements_of(request_id: str) -> Iterator[list[str]]:
    """Every SQL statement sent, on any engine of this process, on behalf of the HTTP
    request `request_id` (and the tasks it started), in order."""
    seen: list[str] = []

    def ours() -> bool:
        return structlog.contextvars.get_contextvars().get("request_id") == request_id

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if ours():
            seen.append(" ".join(statement.split()))

    def begun(_conn: Any) -> None:
        if ours():
            seen.append("-- a transaction begins")

    event.listen(Engine, "before_cursor_execute", note)
    event.listen(Engine, "begin", begun)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)
        event.remove(Engine, "begin", begun)


def kind(statement: str) -> str:
    """'UPDATE source_results', 'SELECT near_relatives', ...: what a statement does to what;
    for one of several parts (`WITH ... AS (INSERT ...)`), what each part writes."""
    words = statement.replace('"', "").replace("(", " ").split()
    verb = words[0].upper()
    if verb == "WITH":
        writes = [
            f"{word.upper()} {words[index + (2 if word.upper() != 'UPDATE' else 1)]}"
            for index, word in enumerate(words)
            if word.upper() in ("INSERT", "UPDATE", "DELETE") and index + 2 < len(words)
        ]
        return " + ".join(writes) if writes else "SELECT"
    if verb in ("INSERT", "DELETE"):
        table = words[2]
    elif verb == "UPDATE":
        table = words[1]
    else:
        table = words[words.index("FROM") + 1] if "FROM" in words else "-"
    return f"{verb} {table}"


def _household(reference: str) -> dict[str, Any]:
    return verification_body(
        [
            member(make_id_number("530103"), name="张三", relation="applicant"),
            member(make_id_number("530103"), name="李四", relation="spouse"),
            member(make_id_number("530103"), name="张小", relation="child"),
        ],
        region_code="530103",
        reference=reference,
    )


async def test_one_verification_costs_few_statements(own_database_url: str, tmp_path: Path) -> None:
    """A 3-person household, six sources: every statement listed, the total bounded."""
    token = await caseworker_token(own_database_url)
    settings = service_settings(own_database_url, tmp_path / "sandbox.db")
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=30"}
    async with (
        running_service(settings) as service,
        httpx.AsyncClient(
            base_url=service.base_url, headers=headers, timeout=60, verify=CLIENT_TLS
        ) as client,
    ):
        # The first request reads the API key, the connectors' configuration, ...: caches
        # every later request shares.
        warm = await client.post("/v1/verifications", json=_household("warm-up"))
        assert warm.status_code == 200, warm.text
        with statements_of("counted-verification") as seen:
            response = await client.post(
                "/v1/verifications",
                json=_household("counted"),
                headers={"X-Request-ID": "counted-verification"},
            )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "completed"
    assert len(answer["sources"]) == 6
    assert {source["status"] for source in answer["sources"]} <= {"ok", "no_record"}

    statements = [line for line in seen if not line.startswith("--")]
    settling = [line for line in statements if SETTLING in kind(line)]
    listing = "\n".join(f"     {line[:160]}" for line in seen)
    summary = ", ".join(f"{what} ×{n}" for what, n in Counter(map(kind, statements)).items())
    print(f"\n{len(statements)} statements in {len(seen) - len(statements)} transactions")
    print(f"{summary}\n{listing}")
    besides = len(statements) - len(settling)
    assert besides <= STATEMENTS_BESIDES_SETTLING, f"{besides} besides settling:\n{listing}"
    assert 1 <= len(settling) <= 6
    transactions = "\n".join(seen).split("-- a transaction begins")
    assert all(part.count(SETTLING) <= 1 for part in transactions), listing
    if own_database_url.startswith("postgresql"):
        # The verification with its members, sources and audit event, in one statement;
        # the last settle with the count of what awaits the partner; the end with its
        # report. (Answers spread wider than the settle window are settled in between.)
        kinds = [kind(line) for line in statements]
        assert kinds[0] == (
            "INSERT verifications + INSERT verification_members + INSERT source_results"
            " + INSERT audit_events"
        ), listing
        assert kinds[-2:] == [
            "UPDATE verifications + UPDATE source_results",
            "UPDATE verifications + INSERT reports",
        ], listing
        assert all(SETTLING in middle for middle in kinds[1:-1]), listing
