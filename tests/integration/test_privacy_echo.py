"""ID numbers never leave the service in full: not in a problem, not in a log line.

An ID number next to a letter (`A530102...`) used to slip past masking that looked for
word boundaries, in references, 404 `instance` fields, unknown field names and access-log
lines; and exception tracebacks carried SQL parameters (names, incomes, balances).
"""

import logging
import re
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service.db import create_engine
from tests.conftest import ClientFactory
from tests.factories import make_id_number, member, verification_body, without_identifiers


def masked(id_number: str) -> str:
    return id_number[:6] + "********" + id_number[-4:]


def full_width(id_number: str) -> str:
    return "".join(chr(ord("０") + int(c)) if c.isdigit() else c for c in id_number)


@pytest.fixture
def access_log() -> Iterator[None]:
    """Lines that quote request URLs on: uvicorn's access lines, as `hedui serve` writes
    them, and httpx's request lines (DEBUG in hedui; on here, since the test's own client
    logs the URLs it calls through the same handler)."""
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "httpx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.parametrize("attached", ["A{}", "{}B", "case-x{}y", "0{}"])
async def test_reference_with_an_id_number_attached_to_letters_is_refused(
    api_client: ClientFactory, attached: str
) -> None:
    caseworker = await api_client()
    id_number = make_id_number("530103")
    body = verification_body(
        [member(make_id_number("530103"))],
        region_code="530103",
        reference=attached.format(id_number),
    )

    response = await caseworker.post("/v1/verifications", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "reference"]
    assert id_number not in response.text


async def test_path_values_and_unknown_fields_never_echo_an_attached_id_number(
    api_client: ClientFactory,
) -> None:
    caseworker = await api_client()
    id_number = make_id_number("530103")

    missing = await caseworker.get(f"/v1/verifications/A{id_number}")
    unrouted = await caseworker.get(f"/v1/nowhere/{id_number}Z")
    unknown = await caseworker.post(
        "/v1/verifications",
        json={**verification_body([member(make_id_number("530103"))]), f"x{id_number}": 1},
    )
    wide = await caseworker.get(f"/v1/verifications/{full_width(id_number)}")

    assert missing.status_code == 404
    assert missing.json()["instance"] == "/v1/verifications/<invalid>"
    assert unrouted.status_code == 404
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", f"x{masked(id_number)}"]
    assert wide.status_code == 404
    for response in (missing, unrouted, unknown, wide):
        assert id_number not in response.text
        assert full_width(id_number) not in response.text


async def test_path_values_that_are_no_id_of_ours_are_neither_echoed_nor_kept(
    api_client: ClientFactory,
) -> None:
    """A name or an amount in a path is answered with the 404 an unknown id gets; neither
    the problem's `instance` nor the audit trail (kept for ever) repeats it. An id of the
    right shape, and a connector's name, are kept: who asked for what."""
    actor = f"path probe {uuid.uuid4()}"
    caseworker = await api_client(role="caseworker", region="53", name=actor)
    admin = await api_client(role="admin", region="00", name=actor)
    unknown_id = str(uuid.uuid4())

    name = await caseworker.get("/v1/verifications/%E6%AC%A7%E9%98%B3%E5%A8%9C%E5%A8%9C")
    amount = await caseworker.get("/v1/warnings/87654.32")
    unrouted = await caseworker.get("/v1/nowhere/87654.32/Li%20Na")
    absent = await caseworker.get(f"/v1/verifications/{unknown_id}")
    connector = await admin.post("/v1/connectors/no_such_partner/disable")
    odd_connector = await admin.post("/v1/connectors/%E6%AC%A7%E9%98%B3/disable")

    assert name.status_code == amount.status_code == absent.status_code == 404
    assert name.json()["instance"] == "/v1/verifications/<invalid>"
    assert amount.json()["instance"] == "/v1/warnings/<invalid>"
    assert unrouted.json()["instance"] == "/v1/nowhere/<invalid>/<invalid>"
    assert absent.json()["instance"] == f"/v1/verifications/{unknown_id}"
    assert odd_connector.json()["instance"] == "/v1/connectors/<invalid>/disable"
    auditor = await api_client(role="auditor", region="00")
    listed = await auditor.get("/v1/audit", params={"limit": 200})
    mine = [
        (event["action"], event["object_id"])
        for event in listed.json()["items"]
        if event["actor_name"] == actor
    ]
    assert sorted(mine) == sorted(
        [
            ("verification.read", "<invalid>"),
            ("warning.read", "<invalid>"),
            ("verification.read", unknown_id),
            ("connector.disable", "no_such_partner"),
            ("connector.disable", "<invalid>"),
        ]
    ), (connector.status_code, mine)
    assert "87654" not in without_identifiers(listed.text)
    assert "欧阳" not in listed.text


@pytest.mark.parametrize("separator", ["-", ".", " "])
async def test_path_values_never_echo_an_id_number_written_apart(
    api_client: ClientFactory, separator: str
) -> None:
    """`530102-19800101-123X`: no run of digits to mask, so every digit is."""
    caseworker = await api_client()
    id_number = make_id_number("530103")
    apart = separator.join((id_number[:6], id_number[6:14], id_number[14:]))

    missing = await caseworker.get(f"/v1/verifications/{apart}")
    unknown = await caseworker.get(f"/v1/connectors/{apart}")

    assert missing.status_code == 404
    assert unknown.status_code in (403, 404)
    for response in (missing, unknown):
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        echoed = " ".join(str(body.get(field, "")) for field in ("instance", "detail"))
        assert not re.search(r"\d{4}", echoed), echoed


async def test_access_log_lines_never_carry_an_id_number(
    api_client: ClientFactory,
    http: httpx.AsyncClient,
    access_log: None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caseworker = await api_client()
    id_number = make_id_number("530103")
    capfd.readouterr()

    await caseworker.get(f"/v1/verifications/A{id_number}")
    await caseworker.get("/v1/verifications", params={"reference": f"ref{id_number}"})
    await caseworker.get(f"/v1/verifications/{full_width(id_number)}")
    await http.get(f"/sandbox/faults/x{id_number}")

    logged = "".join(capfd.readouterr())
    assert "/v1/verifications" in logged  # the access lines are there to check
    assert id_number not in logged
    assert full_width(id_number) not in logged
    assert quote(full_width(id_number)) not in logged
    assert f"A{masked(id_number)}" in logged


async def test_sandbox_validation_errors_mask_unknown_field_names(
    http: httpx.AsyncClient,
) -> None:
    id_number = make_id_number("530102")
    response = await http.post(
        "/sandbox/people", json={"id_number": make_id_number("530102"), f"k{id_number}": 1}
    )
    assert response.status_code == 422
    assert id_number not in response.text


async def test_database_errors_carry_no_statement_parameters(database_url: str) -> None:
    """Every engine hides parameters: a failing statement's text names none of them."""
    engine = create_engine(database_url)
    secret = "张三丰 balance 500000.00"
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(
                    text("SELECT nothing FROM nowhere WHERE x = :v"), {"v": secret}
                )
    finally:
        await engine.dispose()
    assert secret not in str(raised.value)
    assert "hide_parameters" in str(raised.value)
