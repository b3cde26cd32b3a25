"""Webhooks end to end: a receiver served by the test, failing as told, over real HTTP."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.config import Settings
from service.db import create_engine, create_session_factory
from service.models import ApiKey, AuditEvent, Webhook
from service.recheck.drive import run_until_done
from service.recipient.calendar import add_months
from service.runtime import build_runtime
from service.webhook.delivery import NOT_ALLOWED
from tests.conftest import CLIENT_TLS, keyed_session_factory, running_service, service_settings
from tests.factories import make_id_number, member, verification_body
from tests.loopback import loopback_server
from tests.stored import api_tokens
from tests.webhook_receiver import Receiver, receiving

SECRET = "whsec_test_0123456789abcdef"
MAX_ATTEMPTS = 3


@dataclass
class Setup:
    base_url: str
    receiver_url: str
    receiver: Receiver
    client: Callable[[str], httpx.AsyncClient]
    settings: Settings


@pytest.fixture
def setup_factory(own_database_url: str, tmp_path: Path) -> Callable[[int | None], Any]:
    def make(failures: int | None, **settings: Any) -> Any:
        return _setup(own_database_url, tmp_path, Receiver(SECRET, failures), **settings)

    return make


@asynccontextmanager
async def _setup(
    database_url: str, tmp_path: Path, receiver: Receiver, **overrides: Any
) -> AsyncIterator[Setup]:
    tokens = await api_tokens(database_url, "caseworker", "approver", "integrator")
    settings = service_settings(
        database_url,
        tmp_path / "sandbox.db",
        webhook_hosts="127.0.0.1",
        webhook_poll_s=0.05,
        webhook_backoff_s=0.05,
        webhook_max_attempts=MAX_ATTEMPTS,
        recheck_interval_s=0,
        batch_sweep_s=0.1,
        **overrides,
    )
    clients: list[httpx.AsyncClient] = []
    async with receiving(receiver) as receiver_url, running_service(settings) as service:

        def client(role: str) -> httpx.AsyncClient:
            made = httpx.AsyncClient(
                base_url=service.base_url,
                headers={"Authorization": f"Bearer {tokens[role]}"},
                timeout=30,
                verify=CLIENT_TLS,
            )
            clients.append(made)
            return made

        try:
            yield Setup(service.base_url, receiver_url, receiver, client, settings)
        finally:
            for made in clients:
                await made.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def approved_verification(setup: Setup) -> str:
    person = make_id_number("530102")
    async with httpx.AsyncClient(base_url=setup.base_url, verify=CLIENT_TLS) as sandbox:
        await sandbox.post("/sandbox/people", json={"id_number": person})
    created = await setup.client("caseworker").post(
        "/v1/verifications",
        json=verification_body([member(person)], as_of=None),
        headers={"Prefer": "wait=15"},
    )
    assert created.status_code == 200, created.text
    decided = await setup.client("approver").post(
        f"/v1/verifications/{created.json()['id']}/decision",
        json={"decision": "approve", "reason": "ok"},
    )
    assert decided.status_code == 201, decided.text
    verification_id: str = created.json()["id"]
    return verification_id


async def subscribe(
    setup: Setup, events: tuple[str, ...] = ("verification.completed", "decision.recorded")
) -> str:
    created = await setup.client("integrator").post(
        "/v1/webhooks",
        json={"url": setup.receiver_url, "events": list(events), "secret": SECRET},
    )
    assert created.status_code == 201, created.text
    assert "secret" not in created.json()
    webhook_id: str = created.json()["id"]
    return webhook_id


async def stored_webhook(setup: Setup, url: str) -> str:
    """A webhook of region 53 for both events, stored as is (the URL unchecked, as one
    registered before today's checks, or while its host was allowed); its id."""
    engine = create_engine(setup.settings.database_url)
    try:
        sessions = await keyed_session_factory(engine)
        async with sessions() as session:
            creator = (await session.scalars(select(ApiKey.id).limit(1))).first()
            hook = Webhook(
                url=url,
                events=["verification.completed", "decision.recorded"],
                secret=SECRET,
                region_prefix="53",
                active=True,
                created_by=creator,
            )
            session.add(hook)
            await session.commit()
            return hook.id
    finally:
        await engine.dispose()


async def test_a_receiver_failing_twice_gets_each_event_once_signed(
    setup_factory: Callable[[int | None], Any],
) -> None:
    async with setup_factory(2) as setup:
        webhook_id = await subscribe(setup)
        verification_id = await approved_verification(setup)

        async def both_accepted() -> bool:
            return len(setup.receiver.accepted) >= 2

        await eventually(both_accepted)
        await asyncio.sleep(0.3)  # nothing more arrives
        accepted = setup.receiver.accepted
        assert sorted(e["type"] for e in accepted) == [
            "decision.recorded",
            "verification.completed",
        ]
        assert len({e["id"] for e in accepted}) == 2
        assert all(setup.receiver.attempts[e["id"]] == 3 for e in accepted)
        assert setup.receiver.bad_signatures == 0
        completed = next(e for e in accepted if e["type"] == "verification.completed")
        assert completed["data"]["verification_id"] == verification_id
        assert completed["data"]["recommendation"] == "eligible"
        decided = next(e for e in accepted if e["type"] == "decision.recorded")
        assert decided["data"]["recipient_id"]
        deliveries = await setup.client("integrator").get(f"/v1/webhooks/{webhook_id}/deliveries")
        assert deliveries.status_code == 200, deliveries.text
        assert [(d["status"], d["attempts"]) for d in deliveries.json()["items"]] == [
            ("delivered", 3),
            ("delivered", 3),
        ]


async def test_a_receiver_that_always_fails_ends_dead_and_can_be_retried(
    setup_factory: Callable[[int | None], Any],
) -> None:
    async with setup_factory(None) as setup:
        webhook_id = await subscribe(setup)
        await approved_verification(setup)
        integrator = setup.client("integrator")
        path = f"/v1/webhooks/{webhook_id}/deliveries"

        async def all_dead() -> bool:
            items = (await integrator.get(path, params={"status": "dead"})).json()["items"]
            return len(items) == 2

        await eventually(all_dead)
        dead = (await integrator.get(path, params={"status": "dead"})).json()["items"]
        assert all(d["attempts"] == MAX_ATTEMPTS for d in dead)
        assert all(d["last_status"] == 503 for d in dead)
        assert sum(setup.receiver.attempts.values()) == 2 * MAX_ATTEMPTS

        setup.receiver.failures = 0
        retried = await integrator.post(f"{path}/{dead[0]['id']}/redeliver")
        assert retried.status_code == 202, retried.text
        # A new round, due now; why the last round ended stays shown until it is replaced.
        assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
        assert retried.json()["last_status"] == 503

        async def delivered() -> bool:
            return len(setup.receiver.accepted) == 1

        await eventually(delivered)
        assert setup.receiver.accepted[0]["id"] == dead[0]["event_id"]


async def test_a_removed_webhook_gets_nothing_more_and_a_region_has_at_most_twenty(
    setup_factory: Callable[[int | None], Any],
) -> None:
    async with setup_factory(None) as setup:  # the receiver fails: deliveries stay pending
        webhook_id = await subscribe(setup)
        integrator = setup.client("integrator")
        await approved_verification(setup)

        removed = await integrator.delete(f"/v1/webhooks/{webhook_id}")
        again = await integrator.delete(f"/v1/webhooks/{webhook_id}")

        assert (removed.status_code, again.status_code) == (204, 204)
        assert (removed.content, removed.headers.get("content-type")) == (b"", None)
        assert (await integrator.get(f"/v1/webhooks/{webhook_id}")).json()["active"] is False
        deliveries = f"/v1/webhooks/{webhook_id}/deliveries"
        items = (await integrator.get(deliveries)).json()["items"]
        assert {d["status"] for d in items} <= {"dead", "delivered"}
        attempts = sum(setup.receiver.attempts.values())
        await approved_verification(setup)
        await asyncio.sleep(0.5)  # several polling rounds
        assert sum(setup.receiver.attempts.values()) == attempts
        assert len((await integrator.get(deliveries)).json()["items"]) == len(items)
        redelivered = await integrator.post(f"{deliveries}/{items[0]['id']}/redeliver")
        assert redelivered.status_code == 409

        for _ in range(20):
            await subscribe(setup, ("warning.raised",))
        refused = await integrator.post(
            "/v1/webhooks",
            json={"url": setup.receiver_url, "events": ["warning.raised"], "secret": SECRET},
        )
        assert refused.status_code == 409, refused.text

        # Listed a page at a time, newest first; the removed one apart.
        pages, cursor = [], None
        while True:
            page = (
                await integrator.get(
                    "/v1/webhooks", params={"limit": 8, **({"cursor": cursor} if cursor else {})}
                )
            ).json()
            pages.append([hook["id"] for hook in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(ids) for ids in pages] == [8, 8, 5]
        listed = [hook_id for ids in pages for hook_id in ids]
        assert len(set(listed)) == 21
        assert listed[-1] == webhook_id  # the oldest
        removed_only = (await integrator.get("/v1/webhooks", params={"active": "false"})).json()
        assert [hook["id"] for hook in removed_only["items"]] == [webhook_id]
        active = (await integrator.get("/v1/webhooks", params={"active": "true"})).json()
        assert len(active["items"]) == 20
        assert webhook_id not in {hook["id"] for hook in active["items"]}
        assert "DELETE /v1/webhooks/{id}" in refused.json()["detail"]


async def test_a_receiver_the_client_cannot_send_to_fails_alone(
    setup_factory: Callable[[int | None], Any],
) -> None:
    """A webhook stored with a URL the HTTP client refuses (one registered before URLs were
    checked as they are now): its deliveries fail as attempts of their own, and every other
    receiver gets each event once."""
    async with setup_factory(0) as setup:
        good = await subscribe(setup)
        await stored_webhook(setup, "http://127.0.0.1\t:9/")

        await approved_verification(setup)

        async def both_accepted() -> bool:
            return len(setup.receiver.accepted) >= 2

        await eventually(both_accepted)
        integrator = setup.client("integrator")

        async def settled() -> bool:
            items = (await integrator.get(f"/v1/webhooks/{good}/deliveries")).json()["items"]
            return [d["status"] for d in items] == ["delivered", "delivered"]

        await eventually(settled, timeout_s=5)  # not left claimed, to be sent again
        assert len(setup.receiver.accepted) == 2
        assert all(count == 1 for count in setup.receiver.attempts.values())


async def test_a_host_taken_off_the_allow_list_is_sent_nothing_more(
    setup_factory: Callable[[int | None], Any],
) -> None:
    """The allow-list is read at every attempt, not only at registration: a webhook stored
    while its host was allowed (here `localhost`, which the list no longer names) is sent
    nothing; its deliveries fail saying why, and every other receiver gets each event."""
    async with setup_factory(0) as setup:
        good = await subscribe(setup)
        narrowed_id = await stored_webhook(
            setup, setup.receiver_url.replace("127.0.0.1", "localhost")
        )

        await approved_verification(setup)
        integrator = setup.client("integrator")

        async def settled(webhook_id: str, status: str) -> bool:
            path = f"/v1/webhooks/{webhook_id}/deliveries"
            items = (await integrator.get(path, params={"status": status})).json()["items"]
            return len(items) == 2

        await eventually(lambda: settled(good, "delivered"))
        await eventually(lambda: settled(narrowed_id, "dead"))
        path = f"/v1/webhooks/{narrowed_id}/deliveries"
        dead = (await integrator.get(path)).json()["items"]
        assert {(d["last_error"], d["last_status"]) for d in dead} == {(NOT_ALLOWED, None)}
        assert len(setup.receiver.accepted) == 2
        assert all(count == 1 for count in setup.receiver.attempts.values())
        # Nor is it sent again on request while its host is off the list.
        again = await integrator.post(f"{path}/{dead[0]['id']}/redeliver")
        assert again.status_code == 409, again.text
        assert "HEDUI_WEBHOOK_HOSTS" in again.json()["detail"]
        assert (await integrator.get(path, params={"status": "dead"})).json()["items"] == dead


async def test_a_url_outside_the_allow_list_is_422_naming_url(
    setup_factory: Callable[[int | None], Any],
) -> None:
    async with setup_factory(0) as setup:
        integrator = setup.client("integrator")
        for url in (
            "http://169.254.169.254/latest",
            "ftp://127.0.0.1/x",
            "http://u:p@127.0.0.1/",
            "http://127.0.0.1\t:9901/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:0/",
        ):
            response = await integrator.post(
                "/v1/webhooks",
                json={"url": url, "events": ["warning.raised"], "secret": SECRET},
            )
            assert response.status_code == 422, url
            assert response.json()["errors"][0]["loc"] == ["body", "url"]
        caseworker = setup.client("caseworker")
        response = await caseworker.post(
            "/v1/webhooks",
            json={"url": setup.receiver_url, "events": ["warning.raised"], "secret": SECRET},
        )
        assert response.status_code == 403
        assert (await integrator.get("/v1/webhooks")).json() == {"items": [], "next_cursor": None}


async def test_batch_completed_is_sent_once_for_an_upload_and_for_a_days_rechecks(
    setup_factory: Callable[[int | None], Any],
) -> None:
    async with setup_factory(1) as setup:
        await subscribe(setup, ("batch.completed",))
        caseworker = setup.client("caseworker")
        person = make_id_number("530102")
        uploaded = await caseworker.post(
            "/v1/batches",
            json={
                "households": [verification_body([member(person)], as_of=None)],
                "reference": "h2-upload",
            },
        )
        assert uploaded.status_code == 201, uploaded.text
        upload_id = uploaded.json()["id"]

        # Two approved households of one county, re-checked a year on: one batch.
        approved = {await approved_verification(setup) for _ in range(2)}
        settings = setup.settings.model_copy(
            update={"partner_base_url": f"{setup.base_url}/sandbox", "batch_sweep_s": 0}
        )
        async with build_runtime(settings, runs_here=True) as runtime:
            await runtime.health.start(
                runtime.registry, runtime.fetcher.configs, runtime.http_client
            )
            tally = await run_until_done(runtime.rechecks, add_months(date.today(), 12))
        assert tally.count("queued") == 2
        [recheck_id] = tally.batches

        def completions() -> list[dict[str, Any]]:
            return [e for e in setup.receiver.accepted if e["type"] == "batch.completed"]

        async def both_completed() -> bool:
            return len(completions()) >= 2

        await eventually(both_completed)
        await asyncio.sleep(0.3)  # nothing more arrives
        by_batch = {e["data"]["batch_id"]: e for e in completions()}
        assert len(completions()) == 2
        assert set(by_batch) == {upload_id, recheck_id}
        assert all(setup.receiver.attempts[e["id"]] == 2 for e in completions())
        assert setup.receiver.bad_signatures == 0
        assert by_batch[upload_id]["data"]["kind"] == "upload"
        assert by_batch[upload_id]["data"]["households"] == 1
        recheck = by_batch[recheck_id]["data"]
        assert (recheck["kind"], recheck["status"], recheck["households"]) == (
            "recheck",
            "closed",
            2,
        )
        assert recheck["by_status"] == {"completed": 2}
        assert person not in json.dumps(completions())

        view = (await caseworker.get(f"/v1/batches/{recheck_id}")).json()
        assert (view["kind"], view["status"]) == ("recheck", "closed")
        assert view["completed_at"] is not None
        assert view["progress"]["finished"] is True
        lines = (await caseworker.get(f"/v1/batches/{recheck_id}/verifications")).json()
        assert [item["line"] for item in lines["items"]] == [1, 2]
        assert not approved & {item["id"] for item in lines["items"]}


@asynccontextmanager
async def hostile_receiver(answer: str) -> AsyncIterator[tuple[str, list[int]]]:
    """A receiver that reads the request, then answers 200 with a body that never ends:
    `trickle` (a byte a second) or `flood` (as fast as the socket takes it); or, `silent`,
    never answers at all. Yields its URL
    and how many body bytes it managed to send on each connection."""
    sent: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count = 0
        try:
            await reader.readuntil(b"\r\n\r\n")
            if answer == "silent":
                await asyncio.sleep(60)  # never a status line
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * (1 if answer == "trickle" else 65536)
            while count < 500_000_000:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                count += len(chunk)
                if answer == "trickle":
                    await asyncio.sleep(1)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            sent.append(count)
            writer.close()

    async with loopback_server(serve) as url:
        yield f"{url}/hook", sent


# The delivery loop is the same on both databases: once, on SQLite.
@pytest.mark.parametrize("own_database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("answer", ["trickle", "flood", "silent"])
async def test_a_hostile_receiver_holds_up_no_other_delivery_and_its_body_is_never_read(
    setup_factory: Callable[..., Any], answer: str
) -> None:
    """Deliveries to one receiver that trickles its answer (or floods it) end within the
    attempt's timeout, or at its status line; meanwhile every other receiver gets its
    events at once. Before, one pass waited for every attempt, and the answer's body was
    read whole (a trickle held every webhook of every region; a flood filled memory)."""
    async with (
        hostile_receiver(answer) as (hostile_url, sent),
        setup_factory(0, webhook_timeout_s=2.0) as setup,
    ):
        integrator = setup.client("integrator")
        hostile = await integrator.post(
            "/v1/webhooks",
            json={"url": hostile_url, "events": ["verification.completed"], "secret": SECRET},
        )
        assert hostile.status_code == 201, hostile.text
        await subscribe(setup, ("verification.completed",))
        started = time.monotonic()
        await approved_verification(setup)

        async def honest_delivered() -> bool:
            return len(setup.receiver.of("verification.completed")) == 1

        await eventually(honest_delivered, timeout_s=10)
        assert time.monotonic() - started < 6  # not after the hostile attempts' timeouts

        async def hostile_settled() -> bool:
            listed = await integrator.get(f"/v1/webhooks/{hostile.json()['id']}/deliveries")
            items = listed.json()["items"]
            return bool(items) and items[0]["attempts"] >= 1

        await eventually(hostile_settled, timeout_s=15)
        listed = await integrator.get(f"/v1/webhooks/{hostile.json()['id']}/deliveries")
        item = listed.json()["items"][0]
        if answer == "silent":
            assert item["status"] == "pending"  # failed within the timeout, retried later
        else:
            assert item["status"] == "delivered"  # its 200 counts; its body is never read
    assert sum(sent) < 50_000_000, sent  # the flood was cut off, not read to its end


async def test_a_subscriptions_audit_event_names_the_webhook(
    setup_factory: Callable[[int | None], Any],
) -> None:
    async with setup_factory(None) as setup:
        webhook_id = await subscribe(setup)
    engine = create_engine(setup.settings.database_url)
    async with create_session_factory(engine)() as session:
        created = await session.scalars(
            select(AuditEvent.object_id).where(AuditEvent.action == "webhook.create")
        )
        assert list(created) == [webhook_id]
    await engine.dispose()
