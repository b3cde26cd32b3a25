"""Batches over real HTTP, on SQLite and PostgreSQL: uploads (NDJSON and JSON), refused
lines by number, limits, resuming, cancelling and the progress counts."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from service.auth.principal import Role
from service.auth.service import create_api_key
from service.db import create_engine, create_session_factory
from service.models import Member, Verification
from tests.conftest import CLIENT_TLS, ClientFactory, LiveService, running_service, service_settings
from tests.factories import make_id_number, member, verification_body

NDJSON = {"content-type": "application/x-ndjson"}


def household(reference: str, region_code: str = "530102", **changes: Any) -> dict[str, Any]:
    body = verification_body(
        [member(make_id_number())], reference=reference, region_code=region_code
    )
    body.update(changes)
    return body


def ndjson(*lines: dict[str, Any] | str) -> bytes:
    return "".join(
        (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n"
        for line in lines
    ).encode()


async def finished(
    client: httpx.AsyncClient, batch_id: str, timeout_s: float = 60
) -> dict[str, Any]:
    """The batch once every verification has ended."""
    for _ in range(int(timeout_s / 0.1)):
        answer = await client.get(f"/v1/batches/{batch_id}")
        assert answer.status_code == 200, answer.text
        batch: dict[str, Any] = answer.json()
        if batch["progress"]["finished"]:
            return batch
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch not finished: {batch}")


class TestUpload:
    async def test_ndjson_lines_become_verifications_and_refused_lines_are_listed(
        self, api_client: ClientFactory
    ) -> None:
        """Valid lines run; a refused line names its line and field; blank lines count."""
        client = await api_client(role="caseworker", region="53")
        bad_id = household("b-2")
        bad_id["members"][0]["id_number"] = "530102199001011230"  # wrong check character
        body = ndjson(
            household("b-1"),
            bad_id,
            "",
            household("b-4", region_code="360102"),  # outside the key's region
            "{not json",
            household("b-6"),
        )
        answer = await client.post("/v1/batches?reference=recheck-h2", content=body, headers=NDJSON)
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert answer.headers["location"] == f"/v1/batches/{created['id']}"
        assert created["reference"] == "recheck-h2"
        assert created["status"] == "closed"
        assert created["upload"] == {
            "first_line": 1,
            "last_line": 6,
            "accepted": 2,
            "invalid": 3,
            "skipped": 0,
        }
        assert (created["lines_received"], created["households"], created["invalid_lines"]) == (
            6,
            2,
            3,
        )

        errors = (await client.get(f"/v1/batches/{created['id']}/errors")).json()["items"]
        assert [error["line"] for error in errors] == [2, 4, 5]
        assert errors[0]["status"] == 422
        assert errors[0]["errors"][0]["loc"] == ["body", "members", 0, "id_number"]
        assert errors[1]["status"] == 403
        assert errors[1]["errors"][0]["loc"] == ["body", "region_code"]
        assert errors[2]["status"] == 422
        assert "530102199001011230" not in json.dumps(errors)  # nothing sent is echoed

        batch = await finished(client, created["id"])
        assert batch["progress"]["total"] == 2
        assert batch["progress"]["done"] == 2
        assert batch["by_status"] == {"completed": 2}
        assert sum(batch["by_recommendation"].values()) == 2

        page = (await client.get(f"/v1/batches/{created['id']}/verifications")).json()
        assert [(item["line"], item["reference"]) for item in page["items"]] == [
            (1, "b-1"),
            (6, "b-6"),
        ]
        # A refused line stored nothing: no verification carries its reference.
        for reference in ("b-2", "b-4"):
            listed = await client.get("/v1/verifications", params={"reference": reference})
            assert listed.json()["items"] == []

    async def test_json_body_with_reference_after_the_households(
        self, api_client: ClientFactory
    ) -> None:
        """`{"households": [...], "reference": ...}`: lines are positions in the array."""
        client = await api_client(role="caseworker", region="53")
        households = [household("j-1"), {"reference": "j-2"}, household("j-3")]
        answer = await client.post(
            "/v1/batches", json={"households": households, "reference": "json-batch"}
        )
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert created["reference"] == "json-batch"
        assert (created["households"], created["invalid_lines"]) == (2, 1)
        errors = (await client.get(f"/v1/batches/{created['id']}/errors")).json()["items"]
        assert errors[0]["line"] == 2
        assert {tuple(e["loc"]) for e in errors[0]["errors"]} >= {("body", "program")}
        batch = await finished(client, created["id"])
        assert batch["by_status"] == {"completed": 2}

    async def test_completed_batches_are_listed_apart(self, api_client: ClientFactory) -> None:
        client = await api_client(role="caseworker", region="53", name="completed lists")
        answer = await client.post("/v1/batches", content=ndjson(household("c-1")), headers=NDJSON)
        batch_id = answer.json()["id"]
        await finished(client, batch_id)
        for _ in range(200):  # the sweep marks it completed
            if (await client.get(f"/v1/batches/{batch_id}")).json()["completed_at"]:
                break
            await asyncio.sleep(0.05)

        def ids(page: httpx.Response) -> set[str]:
            return {item["id"] for item in page.json()["items"]}

        done = await client.get("/v1/batches", params={"completed": "true", "limit": 200})
        going = await client.get("/v1/batches", params={"completed": "false", "limit": 200})
        assert batch_id in ids(done)
        assert batch_id not in ids(going)

    async def test_filters_and_pages_of_verifications(self, api_client: ClientFactory) -> None:
        client = await api_client(role="caseworker", region="53")
        body = ndjson(*(household(f"p-{n}") for n in range(5)))
        created = (await client.post("/v1/batches", content=body, headers=NDJSON)).json()
        await finished(client, created["id"])
        first = (
            await client.get(f"/v1/batches/{created['id']}/verifications", params={"limit": 2})
        ).json()
        assert [item["line"] for item in first["items"]] == [1, 2]
        second = (
            await client.get(
                f"/v1/batches/{created['id']}/verifications",
                params={"limit": 2, "cursor": first["next_cursor"]},
            )
        ).json()
        assert [item["line"] for item in second["items"]] == [3, 4]
        none = (
            await client.get(
                f"/v1/batches/{created['id']}/verifications", params={"status": "queued"}
            )
        ).json()
        assert none["items"] == []
        listed = (await client.get("/v1/batches", params={"limit": 200})).json()
        assert created["id"] in {item["id"] for item in listed["items"]}

    async def test_a_batch_is_found_by_its_reference_and_kind(
        self, api_client: ClientFactory
    ) -> None:
        client = await api_client(role="caseworker", region="530102", name="references")
        made = {}
        for reference in ("campaign-a", "campaign-b"):
            answer = await client.post(
                "/v1/batches",
                content=ndjson(household(f"{reference}-1")),
                headers=NDJSON,
                params={"reference": reference},
            )
            made[reference] = answer.json()["id"]

        found = (await client.get("/v1/batches", params={"reference": "campaign-b"})).json()
        uploads = (await client.get("/v1/batches", params={"kind": "upload", "limit": 200})).json()
        rechecks = (await client.get("/v1/batches", params={"kind": "recheck"})).json()

        assert [item["id"] for item in found["items"]] == [made["campaign-b"]]
        assert set(made.values()) <= {item["id"] for item in uploads["items"]}
        assert rechecks["items"] == []
        for params in ({"kind": "yearly"}, {"reference": "r" * 129}):
            assert (await client.get("/v1/batches", params=params)).status_code == 422

    async def test_other_regions_do_not_see_the_batch(self, api_client: ClientFactory) -> None:
        owner = await api_client(role="caseworker", region="5301")
        created = (
            await owner.post("/v1/batches", content=ndjson(household("r-1")), headers=NDJSON)
        ).json()
        stranger = await api_client(role="caseworker", region="36")
        assert (await stranger.get(f"/v1/batches/{created['id']}")).status_code == 404
        auditor = await api_client(role="auditor", region="53")
        assert (await auditor.get(f"/v1/batches/{created['id']}")).status_code == 200
        assert (await auditor.post(f"/v1/batches/{created['id']}/cancel")).status_code == 403


class TestRefusedBodies:
    async def test_a_finished_batch_cannot_be_cancelled(self, api_client: ClientFactory) -> None:
        """Its verifications have all ended and `batch.completed` went out: relabelled
        `cancelled` now, it would say what did not happen."""
        client = await api_client(role="caseworker", region="530102", name="finished")
        created = (
            await client.post("/v1/batches", content=ndjson(household("f-1")), headers=NDJSON)
        ).json()
        batch = await finished(client, created["id"])
        for _ in range(100):
            if batch["completed_at"] is not None:
                break
            await asyncio.sleep(0.1)
            batch = (await client.get(f"/v1/batches/{created['id']}")).json()

        refused = await client.post(f"/v1/batches/{created['id']}/cancel")

        assert refused.status_code == 409, refused.text
        assert "nothing is left to cancel" in refused.json()["detail"]
        after = (await client.get(f"/v1/batches/{created['id']}")).json()
        assert (after["status"], after["completed_at"]) == ("closed", batch["completed_at"])

    async def test_a_withdrawn_households_recommendation_is_not_the_batchs(
        self, api_client: ClientFactory
    ) -> None:
        client = await api_client(role="caseworker", region="530102", name="withdrawing")
        created = (
            await client.post(
                "/v1/batches", content=ndjson(household("w-1"), household("w-2")), headers=NDJSON
            )
        ).json()
        batch = await finished(client, created["id"])
        assert sum(batch["by_recommendation"].values()) == 2
        listed = await client.get(f"/v1/batches/{created['id']}/verifications")
        first = listed.json()["items"][0]["id"]
        withdrawn = await client.post(f"/v1/verifications/{first}/withdraw", json={})
        assert withdrawn.status_code == 200, withdrawn.text

        after = (await client.get(f"/v1/batches/{created['id']}")).json()
        assert after["by_status"] == {"completed": 1, "withdrawn": 1}
        assert sum(after["by_recommendation"].values()) == 1

    async def test_a_batch_whose_households_all_ended_cannot_be_cancelled_before_its_sweep(
        self, api_client: ClientFactory
    ) -> None:
        """Closed, every verification ended, not yet marked completed (the sweep comes every
        2 s): finished all the same, and `batch.completed` will say `closed`."""
        client = await api_client(role="caseworker", region="530102", name="ended")
        created = (
            await client.post("/v1/batches", content=ndjson(household("e-1")), headers=NDJSON)
        ).json()
        await finished(client, created["id"])

        refused = await client.post(f"/v1/batches/{created['id']}/cancel")

        assert refused.status_code == 409, refused.text
        after = (await client.get(f"/v1/batches/{created['id']}")).json()
        assert after["status"] == "closed"

    @pytest.mark.parametrize("action", ["cancel", "close"])
    async def test_an_action_that_takes_no_body_refuses_one_and_does_nothing(
        self, api_client: ClientFactory, action: str
    ) -> None:
        """A body that says something is not ignored while the action goes ahead: the
        caller meant something by it. Nothing, or `{}`, is the action."""
        client = await api_client(role="caseworker", region="530102", name="bodiless")
        created = (
            await client.post(
                "/v1/batches",
                content=ndjson(household("b-1")),
                headers=NDJSON,
                params={"close": "false"},
            )
        ).json()
        path = f"/v1/batches/{created['id']}/{action}"
        for body, kind in (
            (b'{"reason": "x"}', "application/json"),
            (b'{"x": 1, "id": "53010', "application/json"),
            (b"\xff\xfe not json", "text/plain"),
        ):
            refused = await client.post(path, content=body, headers={"content-type": kind})
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["loc"] == ["body"]
            assert "takes no body" in refused.json()["errors"][0]["msg"]
        unchanged = (await client.get(f"/v1/batches/{created['id']}")).json()
        assert unchanged["status"] == "open"
        done = await client.post(path, json={})
        assert done.status_code == 200, done.text
        assert done.json()["status"] != "open"

    async def test_an_upload_not_in_utf8_has_no_line_read_as_a_household(
        self, api_client: ClientFactory
    ) -> None:
        """UTF-16 split at its newline bytes: read in part before (a household made from
        the second line, the first refused); JSON is UTF-8, so every line is refused."""
        client = await api_client(role="caseworker", region="53")
        text = ndjson(household("u16-1"), household("u16-2")).decode()
        answer = await client.post(
            "/v1/batches?reference=utf16", content=text.encode("utf-16"), headers=NDJSON
        )
        assert answer.status_code == 201, answer.text
        upload = answer.json()
        assert (upload["households"], upload["invalid_lines"]) == (0, upload["lines_received"])
        errors = (await client.get(f"/v1/batches/{upload['id']}/errors")).json()["items"]
        assert len(errors) == upload["lines_received"]
        assert all(error["errors"][0]["loc"][0] == "body" for error in errors), errors

    async def test_other_media_types_are_415(self, api_client: ClientFactory) -> None:
        client = await api_client()
        answer = await client.post(
            "/v1/batches", content=b"a,b\n", headers={"content-type": "text/csv"}
        )
        assert answer.status_code == 415
        assert answer.headers["content-type"] == "application/problem+json"

    async def test_a_broken_envelope_before_any_household_stores_nothing(
        self, api_client: ClientFactory
    ) -> None:
        client = await api_client(role="caseworker", region="53", name="envelope")
        before = (await client.get("/v1/batches", params={"limit": 200})).json()["items"]
        for body in (b"[1, 2]", b'{"households": 5}', b'{"unknown": 1, "households": []}'):
            answer = await client.post(
                "/v1/batches", content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 422, answer.text
            assert answer.json()["errors"][0]["loc"][0] == "body"
        after = (await client.get("/v1/batches", params={"limit": 200})).json()["items"]
        assert len(after) == len(before)

    async def test_an_ndjson_body_over_the_household_limit_is_a_refused_line(
        self, api_client: ClientFactory, live_service: LiveService
    ) -> None:
        client = await api_client()
        huge = household("big", reference_note="x" * (live_service.settings.max_body_bytes + 1))
        answer = await client.post(
            "/v1/batches", content=ndjson(huge, household("small")), headers=NDJSON
        )
        assert answer.status_code == 201, answer.text
        errors = (await client.get(f"/v1/batches/{answer.json()['id']}/errors")).json()["items"]
        assert [(e["line"], e["status"]) for e in errors] == [(1, 413)]


@asynccontextmanager
async def own_service(
    database_url: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[LiveService, httpx.AsyncClient]]:
    settings = service_settings(database_url, tmp_path / "sandbox.db", **overrides)
    async with running_service(settings) as service:
        engine = create_engine(database_url)
        async with create_session_factory(engine)() as session:
            _, token = await create_api_key(session, role=Role.caseworker, region="53")
            await session.commit()
        await engine.dispose()
        async with httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            verify=CLIENT_TLS,
        ) as client:
            yield service, client


class TestLimits:
    async def test_bytes_and_count(self, own_database_url: str, tmp_path: Path) -> None:
        """A declared body over HEDUI_MAX_BATCH_BYTES is 413 unread; lines past
        HEDUI_MAX_BATCH_HOUSEHOLDS are 413 and not stored, those before are."""
        async with own_service(
            own_database_url,
            tmp_path,
            max_batch_bytes=4096,
            max_batch_households=3,
            run_mode="queue",
        ) as (_, client):
            big = ndjson(*(household(f"l-{n}") for n in range(20)))
            assert len(big) > 4096
            answer = await client.post("/v1/batches", content=big, headers=NDJSON)
            assert answer.status_code == 413
            assert "HEDUI_MAX_BATCH_BYTES" in answer.json()["detail"]

            five = ndjson(*(household(f"c-{n}") for n in range(5)))
            answer = await client.post("/v1/batches", content=five, headers=NDJSON)
            assert answer.status_code == 413, answer.text
            assert answer.json()["type"] == "/problems/batch-too-large"
            listed = (await client.get("/v1/batches")).json()["items"]
            assert [(b["lines_received"], b["households"]) for b in listed] == [(3, 3)]
            # The full batch is named, so that it can be closed and complete.
            assert answer.headers["location"] == f"/v1/batches/{listed[0]['id']}"
            assert listed[0]["id"] in answer.json()["detail"]
            closed = await client.post(f"/v1/batches/{listed[0]['id']}/close")
            assert closed.json()["status"] == "closed", closed.text

            # A JSON body is one document, checked whole before anything is stored: one
            # with more households than a batch holds is refused whole.
            body = {"reference": "json-five", "households": [household(f"j-{n}") for n in range(5)]}
            answer = await client.post("/v1/batches", json=body)
            assert answer.status_code == 413, answer.text
            assert "this JSON body holds 5: nothing of it is stored" in answer.json()["detail"]
            assert "location" not in answer.headers
            assert len((await client.get("/v1/batches")).json()["items"]) == 1

            engine = create_engine(own_database_url)
            async with create_session_factory(engine)() as session:
                stored = await session.scalar(select(func.count()).select_from(Verification))
                members = await session.scalar(select(func.count()).select_from(Member))
            await engine.dispose()
            assert (stored, members) == (3, 3)


class TestResumeAndCancel:
    async def test_appends_skip_lines_already_received(
        self, own_database_url: str, tmp_path: Path
    ) -> None:
        """An upload sent again (same Idempotency-Key, or an overlapping first_line) adds
        only the lines the batch has not received."""
        async with own_service(own_database_url, tmp_path, run_mode="queue") as (_, client):
            lines = [household(f"a-{n}") for n in range(6)]
            head = {**NDJSON, "Idempotency-Key": "upload-1"}
            first = await client.post(
                "/v1/batches?close=false", content=ndjson(*lines[:3]), headers=head
            )
            assert first.status_code == 201, first.text
            batch_id = first.json()["id"]
            again = await client.post(
                "/v1/batches?close=false", content=ndjson(*lines[:4]), headers=head
            )
            assert again.status_code == 200
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json()["id"] == batch_id
            assert again.json()["upload"]["skipped"] == 3
            assert again.json()["upload"]["accepted"] == 1

            overlap = await client.post(
                f"/v1/batches/{batch_id}/households?first_line=3",
                content=ndjson(*lines[2:6]),
                headers=NDJSON,
            )
            assert overlap.status_code == 200, overlap.text
            assert overlap.json()["upload"] == {
                "first_line": 3,
                "last_line": 6,
                "accepted": 2,
                "invalid": 0,
                "skipped": 2,
            }
            gap = await client.post(
                f"/v1/batches/{batch_id}/households?first_line=9",
                content=ndjson(household("gap")),
                headers=NDJSON,
            )
            assert gap.status_code == 422
            closed = await client.post(f"/v1/batches/{batch_id}/close")
            assert closed.json()["status"] == "closed"
            late = await client.post(
                f"/v1/batches/{batch_id}/households",
                content=ndjson(household("late")),
                headers=NDJSON,
            )
            assert late.status_code == 409
            batch = (await client.get(f"/v1/batches/{batch_id}")).json()
            assert (batch["lines_received"], batch["households"]) == (6, 6)
            assert batch["by_status"] == {"queued": 6}

    async def test_a_repeat_under_the_same_key_must_resend_the_same_upload(
        self, api_client: ClientFactory
    ) -> None:
        """A different first line, or another reference, under a key already used is 422
        and changes nothing; a resend (which may go on past what the batch received)
        continues the batch, as after a dropped connection."""
        client = await api_client(role="caseworker", region="53", name="idempotent repeats")
        lines = [household("bi-1"), household("bi-2"), household("bi-3")]
        key = {**NDJSON, "Idempotency-Key": "bk-1"}
        # Blank lines and CRLF line ends are part of the upload, sent again as they were.
        first_body = ndjson(lines[0]).replace(b"\n", b"\r\n") + b"\n"
        first = await client.post(
            "/v1/batches?close=false&reference=bk", content=first_body, headers=key
        )
        assert first.status_code == 201, first.text
        batch_id = first.json()["id"]

        async def refused(body: bytes, reference: str = "bk") -> None:
            answer = await client.post(
                f"/v1/batches?close=false&reference={reference}", content=body, headers=key
            )
            assert answer.status_code == 422, answer.text
            problem = answer.json()
            assert problem["errors"] == [
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "already used for a different request body",
                }
            ]
            assert "idempotent-replayed" not in answer.headers

        other = household("bi-other")
        await refused(ndjson(other, lines[1]))  # another first line
        await refused(first_body, reference="other")  # another reference
        await refused(ndjson(lines[0]) + ndjson(lines[1]))  # the first line, ended otherwise
        await refused(b"")  # none of the lines the batch received
        batch = (await client.get(f"/v1/batches/{batch_id}")).json()
        assert (batch["lines_received"], batch["households"], batch["reference"]) == (1, 1, "bk")
        listed = await client.get("/v1/verifications", params={"reference": "bi-other"})
        assert listed.json()["items"] == []

        again = await client.post(
            "/v1/batches?close=false&reference=bk", content=first_body, headers=key
        )
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["upload"]["skipped"] == 1

        longer = first_body + ndjson(lines[1])
        more = await client.post(
            "/v1/batches?close=false&reference=bk", content=longer, headers=key
        )
        assert more.status_code == 200, more.text
        assert (more.json()["upload"]["skipped"], more.json()["upload"]["accepted"]) == (1, 1)
        # Line 2 came with the key too: a repeat must resend it as well, unchanged.
        await refused(first_body + ndjson(other))
        await refused(first_body)

        # A line added by number is not the key's: the key's upload, resent, still holds.
        added = await client.post(
            f"/v1/batches/{batch_id}/households?first_line=4",
            content=ndjson(lines[2]),
            headers=NDJSON,
        )
        assert added.status_code == 200, added.text
        last = await client.post("/v1/batches?reference=bk", content=longer, headers=key)
        assert last.status_code == 200, last.text
        assert last.json()["status"] == "closed"
        assert (last.json()["lines_received"], last.json()["households"]) == (4, 3)
        await finished(client, batch_id)

    async def test_cancel_stops_what_has_not_started(
        self, own_database_url: str, tmp_path: Path
    ) -> None:
        """Nothing runs in queue mode without workers: every verification is still queued,
        and cancelling makes them all `cancelled`; the batch is then finished."""
        async with own_service(own_database_url, tmp_path, run_mode="queue") as (_, client):
            body = ndjson(*(household(f"x-{n}") for n in range(4)))
            created = (await client.post("/v1/batches", content=body, headers=NDJSON)).json()
            assert created["progress"] == {
                "total": 4,
                "done": 0,
                "percent": 0.0,
                "rate_per_s": None,
                "eta_s": None,
                "finished": False,
            }
            cancelled = await client.post(f"/v1/batches/{created['id']}/cancel")
            assert cancelled.status_code == 200
            batch = cancelled.json()
            assert batch["status"] == "cancelled"
            assert batch["by_status"] == {"cancelled": 4}
            assert batch["progress"]["finished"] is True
            one = (await client.get(f"/v1/batches/{created['id']}/verifications")).json()["items"][
                0
            ]
            verification = (await client.get(f"/v1/verifications/{one['id']}")).json()
            assert verification["status"] == "cancelled"
            report = await client.get(f"/v1/verifications/{one['id']}/report")
            assert report.status_code == 409


class TestRunning:
    async def test_an_inline_process_works_through_a_batch_larger_than_its_concurrency(
        self, own_database_url: str, tmp_path: Path
    ) -> None:
        """Four runs at a time and no periodic sweep to help: each run that ends makes room
        for the next of the batch, until all twelve are done."""
        async with own_service(own_database_url, tmp_path, run_concurrency=4, run_sweep_s=3600) as (
            _,
            client,
        ):
            body = ndjson(*(household(f"q-{n}") for n in range(12)))
            created = (await client.post("/v1/batches", content=body, headers=NDJSON)).json()
            batch = await finished(client, created["id"])
            assert batch["by_status"] == {"completed": 12}
            assert batch["progress"]["done"] == 12
            assert batch["progress"]["rate_per_s"] > 0


class TestPrivacy:
    async def test_no_log_line_carries_an_id_number_or_a_name(
        self, api_client: ClientFactory, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """A batch's upload, runs, refused lines and reads log nothing personal."""
        client = await api_client(role="caseworker", region="53")
        valid = household("priv-1")
        valid["members"][0]["name"] = "欧阳修远"
        refused = household("priv-2", region_code="360102")
        ids = [valid["members"][0]["id_number"], refused["members"][0]["id_number"]]
        capfd.readouterr()
        created = (
            await client.post("/v1/batches", content=ndjson(valid, refused), headers=NDJSON)
        ).json()
        await finished(client, created["id"])
        await client.get(f"/v1/batches/{created['id']}/errors")
        await client.get(f"/v1/batches/{created['id']}/verifications")
        logged = "".join(capfd.readouterr())
        assert "run_finished" in logged  # the run's log lines are there to check
        for id_number in ids:
            assert id_number not in logged
        assert "欧阳修远" not in logged


class TestSingleRequestsBesideABatch:
    async def test_a_queued_batch_does_not_make_single_requests_shed(
        self, own_database_url: str, tmp_path: Path
    ) -> None:
        """Queue mode sheds new verifications past HEDUI_MAX_QUEUE_DEPTH waiting ones; a
        batch's households wait by design and are not counted."""
        async with own_service(own_database_url, tmp_path, run_mode="queue", max_queue_depth=2) as (
            _,
            client,
        ):
            body = ndjson(*(household(f"d-{n}") for n in range(5)))
            created = await client.post("/v1/batches", content=body, headers=NDJSON)
            assert created.json()["by_status"] == {"queued": 5}
            single = await client.post("/v1/verifications", json=household("alone"))
            assert single.status_code == 202, single.text
