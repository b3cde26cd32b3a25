"""What each agency was told about why it is asked: `GET /queries/consent`."""

import httpx

from sandbox.consent import SEEN_MAX
from sandbox.state import SandboxState

WHY = {"X-Hedui-Consent-Id": "AUTH-0001", "X-Hedui-Purpose": "dibao"}
A = "11010519491231002X"


async def _told(client: httpx.AsyncClient, **params: str) -> dict[str, dict[str, object]]:
    response = await client.get("/queries/consent", params=params)
    assert response.status_code == 200, response.text
    agencies: dict[str, dict[str, object]] = response.json()["agencies"]
    return agencies


async def test_household_queries_are_counted_with_what_they_said(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/vehicles/query", json={"ids": [A]}, headers=WHY)
    await client.post("/vehicles/query", json={"ids": [A]}, headers=WHY)
    await client.post("/vehicles/query", json={"ids": [A]})  # said nothing
    await client.post(
        "/vehicles/query", json={"ids": [A]}, headers={"X-Hedui-Consent-Id": "AUTH-2"}
    )  # only half of it
    await client.get("/vehicles/ping", headers=WHY)  # a health check: about nobody

    vehicles = (await _told(client))["vehicles"]

    assert vehicles == {
        "calls": 4,
        "missing": 2,
        "refused": 0,
        "seen": [{"consent_id": "AUTH-0001", "purpose": "dibao", "calls": 2}],
    }


async def test_a_bank_poll_is_a_household_query(client: httpx.AsyncClient) -> None:
    submitted = await client.post(
        "/bank/inquiries", json={"customers": [{"id_number": A}]}, headers=WHY
    )
    inquiry = submitted.json()["inquiry_id"]
    await client.get(f"/bank/inquiries/{inquiry}", headers=WHY)
    await client.get(f"/bank/inquiries/{inquiry}")

    bank = (await _told(client))["bank"]

    assert (bank["calls"], bank["missing"]) == (3, 1)
    assert bank["seen"] == [{"consent_id": "AUTH-0001", "purpose": "dibao", "calls": 2}]


async def test_memory_is_bounded_and_the_most_recent_come_first(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    for n in range(SEEN_MAX + 5):
        state.consent.record(
            "pensions",
            [(b"x-hedui-consent-id", f"C-{n}".encode()), (b"x-hedui-purpose", b"tekun")],
        )

    pensions = (await _told(client))["pensions"]
    seen = pensions["seen"]

    assert pensions["calls"] == SEEN_MAX + 5
    assert isinstance(seen, list)
    assert len(seen) == SEEN_MAX
    assert seen[0]["consent_id"] == f"C-{SEEN_MAX + 4}"
    assert (await _told(client, consent_id="C-0"))["pensions"]["seen"] == []
    assert (await _told(client, consent_id="C-9"))["pensions"]["seen"] == [
        {"consent_id": "C-9", "purpose": "tekun", "calls": 1}
    ]


async def test_require_refuses_a_query_without_them_in_the_agencys_format(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.put("/queries/consent", json={"require": True})).json()["require"]

    refused = await client.post("/pensions/batch", json={"requests": []})
    allowed = await client.get("/pensions/health")
    asked = await client.post("/vehicles/query", json={"ids": [A]}, headers=WHY)

    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/json")
    assert allowed.status_code == 200
    assert asked.status_code != 403
    told = await _told(client)
    assert (told["pensions"]["refused"], told["vehicles"]["refused"]) == (1, 0)


async def test_reset_forgets_what_was_received(client: httpx.AsyncClient) -> None:
    await client.post("/vehicles/query", json={"ids": [A]})

    reset = await client.delete("/queries/consent")

    assert reset.json()["agencies"]["vehicles"] == {
        "calls": 0,
        "missing": 0,
        "refused": 0,
        "seen": [],
    }
