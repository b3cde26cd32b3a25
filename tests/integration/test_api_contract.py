"""The parts of the API contract that are about requests, not partner data."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory, LiveService
from tests.factories import make_id_number, member, verification_body

WAIT = {"Prefer": "wait=10"}


def body_for(*ids: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("region_code", "530103")
    return verification_body([member(id_number) for id_number in ids], **kwargs)


class TestDocs:
    async def test_docs_need_no_cdn(self, http: httpx.AsyncClient) -> None:
        page = await http.get("/docs")
        assert page.status_code == 200
        assert "cdn." not in page.text
        script = page.text.split('src="', 1)[1].split('"', 1)[0]
        assert (await http.get(script)).status_code == 200

    async def test_openapi_has_request_examples(self, http: httpx.AsyncClient) -> None:
        schema = (await http.get("/openapi.json")).json()
        create = schema["components"]["schemas"]["VerificationCreate"]
        assert create["examples"][0]["program"] == "dibao"


class TestAuthentication:
    async def test_missing_token_is_401_problem(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/v1/verifications")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"] == "Bearer"
        described = await http.get(response.json()["type"])
        assert described.status_code == 200
        assert "apikey create" in described.json()["description"]

    async def test_unknown_token_is_401(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/v1/verifications", headers={"Authorization": "Bearer hd_nope"})
        assert response.status_code == 401

    async def test_wrong_role_is_403(self, api_client: ClientFactory) -> None:
        operator = await api_client(role="operator", region="00")
        response = await operator.post("/v1/verifications", json=body_for(make_id_number("530103")))
        assert response.status_code == 403


class TestValidation:
    @pytest.mark.parametrize(
        ("change", "loc"),
        [
            ({"members": []}, ["body", "members"]),
            ({"consent": None}, ["body", "consent"]),
            ({"program": "housing"}, ["body", "program"]),
            ({"region_code": "5301"}, ["body", "region_code"]),
            ({"colour": "blue"}, ["body", "colour"]),
        ],
    )
    async def test_bad_body_names_the_field(
        self, api_client: ClientFactory, change: dict[str, Any], loc: list[str]
    ) -> None:
        caseworker = await api_client()
        response = await caseworker.post(
            "/v1/verifications", json={**body_for(make_id_number("530103")), **change}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == loc

    async def test_duplicate_member_is_rejected(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        same = make_id_number("530103")
        response = await caseworker.post("/v1/verifications", json=body_for(same, same))
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "members"]

    async def test_two_applicants_are_rejected(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        body = verification_body(
            [member(make_id_number("530103")), member(make_id_number("530103"), "李四")],
            region_code="530103",
        )
        response = await caseworker.post("/v1/verifications", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "members"]

    async def test_lower_case_x_is_accepted(self, api_client: ClientFactory) -> None:
        caseworker = await api_client(region="11")
        response = await caseworker.post(
            "/v1/verifications",
            json=verification_body([member("11010519491231002x")], region_code="110105"),
        )
        assert response.status_code == 202, response.text

    async def test_declared_income_is_optional(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        body = body_for(make_id_number("530103"))
        del body["members"][0]["declared_monthly_income"]
        response = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
        assert response.status_code == 200, response.text
        assert response.json()["members"][0]["declared_monthly_income"] == "0.00"

    @pytest.mark.parametrize("written", ["1e3", "1_000", "\uff18\uff10\uff10"])
    async def test_declared_income_python_would_read_is_422(
        self, api_client: ClientFactory, written: str
    ) -> None:
        caseworker = await api_client()
        body = body_for(make_id_number("530103"))
        body["members"][0]["declared_monthly_income"] = written
        response = await caseworker.post("/v1/verifications", json=body)
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert error["loc"] == ["body", "members", 0, "declared_monthly_income"]
        assert written not in response.text

    async def test_declared_income_as_a_plain_string(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        body = body_for(make_id_number("530103"))
        body["members"][0]["declared_monthly_income"] = "812.5"
        response = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
        assert response.status_code == 200, response.text
        assert response.json()["members"][0]["declared_monthly_income"] == "812.50"

    async def test_region_outside_the_keys_scope_is_403(self, api_client: ClientFactory) -> None:
        caseworker = await api_client(region="36")
        response = await caseworker.post(
            "/v1/verifications", json=body_for(make_id_number("530103"))
        )
        assert response.status_code == 403
        assert response.json()["errors"][0]["loc"] == ["body", "region_code"]

    async def test_no_policy_in_force_is_422(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        response = await caseworker.post(
            "/v1/verifications", json=body_for(make_id_number("530103"), as_of="1990-01-01")
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "as_of"]

    async def test_a_member_born_after_as_of_is_422_and_nothing_is_stored(
        self, api_client: ClientFactory
    ) -> None:
        """Assessed as of 2020-07-01, a child born in 2025 was not of that household: it
        would count twice in its size and its benefit."""
        caseworker = await api_client()
        parent, child = make_id_number("530103"), make_id_number("530103", birth="20250101")
        body = body_for(parent, as_of="2020-07-01", reference="case-born-later")
        body["members"].append({"id_number": child, "name": "张小", "relation": "child"})
        response = await caseworker.post("/v1/verifications", json=body)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["loc"] == ["body", "members"]
        assert "member 2 was born after as_of (2020-07-01)" in error["msg"]
        assert child not in response.text
        assert child[:6] + "********" not in response.text
        listed = await caseworker.get("/v1/verifications", params={"reference": body["reference"]})
        assert listed.json()["items"] == []

    async def test_unknown_province_is_422(self, api_client: ClientFactory) -> None:
        admin = await api_client(role="admin", region="00")
        response = await admin.post(
            "/v1/verifications", json=body_for(make_id_number("530103"), region_code="999999")
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "region_code"]

    async def test_reference_holding_an_id_number_is_refused_and_not_echoed(
        self, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client()
        id_number = make_id_number("530103")
        response = await caseworker.post(
            "/v1/verifications", json=body_for(id_number, reference=f"case-{id_number}")
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "reference"]
        assert id_number not in response.text

    @pytest.mark.parametrize("reference", ["张三丰的申请", "case 张 三丰", "ZHANG-san-feng 2026"])
    async def test_reference_naming_a_member_is_refused_and_not_echoed(
        self, api_client: ClientFactory, reference: str
    ) -> None:
        caseworker = await api_client()
        name = "Zhang San Feng" if reference.isascii() else "张三丰"
        body = verification_body(
            [
                member(make_id_number("530103"), "李四"),
                member(make_id_number("530103"), name, "spouse"),
            ],
            region_code="530103",
            reference=reference,
        )
        response = await caseworker.post("/v1/verifications", json=body)
        assert response.status_code == 422
        (error,) = response.json()["errors"]
        assert error["loc"] == ["body", "reference"]
        assert "member 2" in error["msg"]
        assert name not in response.text
        assert reference not in response.text

    async def test_id_numbers_in_paths_and_unknown_fields_are_masked(
        self, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client()
        id_number = make_id_number("530103")
        missing = await caseworker.get(f"/v1/verifications/{id_number}")
        unknown = await caseworker.post(
            "/v1/verifications", json={**body_for(make_id_number("530103")), id_number: 1}
        )
        assert missing.status_code == 404
        assert unknown.status_code == 422
        for response in (missing, unknown):
            assert id_number not in response.text
        # A path value that is no id of ours is not echoed at all; a field name is masked.
        assert missing.json()["instance"] == "/v1/verifications/<invalid>"
        assert id_number[:6] + "********" + id_number[-4:] in unknown.text

    async def test_consent_signed_in_the_future_is_422(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        body = body_for(make_id_number("530103"))
        body["consent"]["signed_on"] = "2999-01-01"
        response = await caseworker.post("/v1/verifications", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "consent", "signed_on"]

    async def test_a_policy_date_after_today_is_422_and_today_is_not(
        self, api_client: ClientFactory, live_service: LiveService
    ) -> None:
        """A typo (2062 for 2026) would be scored by the latest policy, silently."""
        caseworker = await api_client()
        today = live_service.settings.today()
        later = {**body_for(make_id_number("530103")), "as_of": str(today + timedelta(days=1))}
        now = {**body_for(make_id_number("530103")), "as_of": str(today)}

        refused = await caseworker.post("/v1/verifications", json=later)
        accepted = await caseworker.post("/v1/verifications", json=now)

        assert refused.status_code == 422, refused.text
        error = refused.json()["errors"][0]
        assert error["loc"] == ["body", "as_of"]
        assert "simulate" in error["msg"]
        assert accepted.status_code in (200, 202), accepted.text


class TestListing:
    async def test_pages_newest_first_without_gaps_or_repeats(
        self, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client(region="530104")
        created = []
        for _ in range(5):
            response = await caseworker.post(
                "/v1/verifications",
                json=body_for(
                    make_id_number("530104"), region_code="530104", reference="case-page"
                ),
            )
            created.append(response.json()["id"])

        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, "reference": "case-page"}
            if cursor:
                params["cursor"] = cursor
            page = (await caseworker.get("/v1/verifications", params=params)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break

        assert seen == list(reversed(created))

    async def test_filters_combine_and_region_narrows_within_scope(
        self, api_client: ClientFactory
    ) -> None:
        yunnan = await api_client(region="53")
        for region, program in (("530114", "dibao"), ("530114", "tekun"), ("530115", "dibao")):
            await yunnan.post(
                "/v1/verifications",
                json=body_for(
                    make_id_number(region),
                    region_code=region,
                    program=program,
                    reference="case-filter",
                ),
                headers=WAIT,
            )

        def listed(response: httpx.Response) -> list[tuple[str, str]]:
            return sorted((i["region_code"], i["program"]) for i in response.json()["items"])

        narrowed = await yunnan.get(
            "/v1/verifications",
            params={"reference": "case-filter", "region_code": "530114", "program": "dibao"},
        )
        everything = await yunnan.get("/v1/verifications", params={"reference": "case-filter"})
        jiangxi = await api_client(region="36")
        escaped = await jiangxi.get(
            "/v1/verifications", params={"reference": "case-filter", "region_code": "53"}
        )

        assert listed(narrowed) == [("530114", "dibao")]
        assert len(listed(everything)) == 3
        assert escaped.json()["items"] == []

    async def test_what_awaits_the_approval_step_is_listed(self, api_client: ClientFactory) -> None:
        caseworker = await api_client(region="53")
        approver = await api_client(role="approver", region="53")
        made = []
        for _ in range(2):
            created = await caseworker.post(
                "/v1/verifications",
                json=body_for(make_id_number("530114"), reference="case-awaiting"),
                headers=WAIT,
            )
            made.append(created.json()["id"])
        decided = await approver.post(
            f"/v1/verifications/{made[0]}/decision",
            json={"decision": "return", "reason": "documents missing"},
        )
        assert decided.status_code == 201, decided.text

        pending = await approver.get(
            "/v1/verifications",
            params={"reference": "case-awaiting", "status": "completed", "decided": "false"},
        )
        done = await approver.get(
            "/v1/verifications", params={"reference": "case-awaiting", "decided": "true"}
        )

        assert [i["id"] for i in pending.json()["items"]] == [made[1]]
        assert [i["id"] for i in done.json()["items"]] == [made[0]]

    async def test_created_since_a_moment_for_a_sync(self, api_client: ClientFactory) -> None:
        caseworker = await api_client(region="53")

        async def created() -> dict[str, Any]:
            answer = await caseworker.post(
                "/v1/verifications",
                json=body_for(make_id_number("530114"), reference="case-sync"),
            )
            assert answer.status_code == 202, answer.text
            return (await caseworker.get(f"/v1/verifications/{answer.json()['id']}")).json()

        first, second, third = [await created() for _ in range(3)]

        def ids(**params: str) -> list[str]:
            return [item["id"] for item in pages[tuple(params.items())]]

        pages = {}
        for params in (
            {"created_from": second["created_at"]},
            {"created_before": second["created_at"]},
            {"created_from": first["created_at"], "created_before": third["created_at"]},
        ):
            page = await caseworker.get(
                "/v1/verifications", params={"reference": "case-sync", **params}
            )
            assert page.status_code == 200, page.text
            pages[tuple(params.items())] = page.json()["items"]

        assert ids(created_from=second["created_at"]) == [third["id"], second["id"]]
        assert ids(created_before=second["created_at"]) == [first["id"]]
        assert ids(created_from=first["created_at"], created_before=third["created_at"]) == [
            second["id"],
            first["id"],
        ]

    @pytest.mark.parametrize("moment", ["2026-11-20", "2026-11-20T00:00:00", "yesterday"])
    async def test_a_moment_without_its_offset_is_422(
        self, api_client: ClientFactory, moment: str
    ) -> None:
        caseworker = await api_client()
        response = await caseworker.get("/v1/verifications", params={"created_from": moment})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["query", "created_from"]

    async def test_an_offset_whose_plus_arrived_as_a_space_says_to_write_it_2b(
        self, api_client: ClientFactory
    ) -> None:
        """2026-11-20T09:00:00+08:00 pasted into a URL unencoded: its + is a space there."""
        caseworker = await api_client()
        response = await caseworker.get("/v1/verifications?created_from=2026-11-20T09:00:00+08:00")
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["loc"] == ["query", "created_from"]
        assert "%2B" in error["msg"]
        encoded = await caseworker.get("/v1/verifications?created_from=2026-11-20T09:00:00%2B08:00")
        assert encoded.status_code == 200, encoded.text

    async def test_unknown_query_parameter_is_422(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        response = await caseworker.get("/v1/verifications", params={"colour": "blue"})
        assert response.status_code == 422

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/warnings/summary?severity=high",
            "/v1/connectors?colour=blue",
            "/v1/verifications/x?a=1",
        ],
    )
    async def test_a_parameter_an_endpoint_does_not_take_is_422_not_ignored(
        self, api_client: ClientFactory, path: str
    ) -> None:
        """Not silently left out: a caller who thinks it filtered would read unfiltered
        figures as filtered ones."""
        admin = await api_client(role="admin", region="00")
        response = await admin.get(path)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        name = path.split("?")[1].split("=", maxsplit=1)[0]
        assert error["loc"] == ["query", name]
        assert "is not a parameter of this endpoint" in error["msg"]

    @pytest.mark.parametrize("path", ["/v1/verifications", "/v1/batches", "/v1/recipients"])
    async def test_a_reference_filter_holding_an_id_number_is_422_as_a_reference_is(
        self, api_client: ClientFactory, path: str
    ) -> None:
        """No reference can hold one (each is refused when given), so the filter would
        find nothing: it says why instead, and the number written apart is refused too."""
        caseworker = await api_client()
        person = make_id_number("530102")
        apart = "-".join((person[:6], person[6:10], person[10:14], person[14:]))
        for reference in (person, apart):
            response = await caseworker.get(path, params={"reference": f"case {reference}"})
            assert response.status_code == 422, response.text
            [error] = response.json()["errors"]
            assert error["loc"] == ["query", "reference"]
            assert "ID number" in error["msg"]
            assert person not in response.text
            assert apart not in response.text

    async def test_a_parameter_given_twice_is_422_not_the_last_one(
        self, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client()
        response = await caseworker.get("/v1/verifications?limit=1&limit=2")
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["query", "limit"]
        assert "more than once" in response.json()["errors"][0]["msg"]

    async def test_an_unknown_parameter_named_by_an_id_number_is_not_echoed(
        self, api_client: ClientFactory
    ) -> None:
        caseworker = await api_client()
        person = make_id_number("530102")
        response = await caseworker.get(f"/v1/verifications?{person}=1")
        assert response.status_code == 422, response.text
        assert person not in response.text

    async def test_bad_cursor_is_422(self, api_client: ClientFactory) -> None:
        caseworker = await api_client()
        response = await caseworker.get("/v1/verifications", params={"cursor": "!!not-a-cursor"})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]

    async def test_only_the_callers_region_is_listed(self, api_client: ClientFactory) -> None:
        kunming = await api_client(region="530105")
        await kunming.post(
            "/v1/verifications", json=body_for(make_id_number("530105"), region_code="530105")
        )
        jiangxi = await api_client(region="36")
        listed = (await jiangxi.get("/v1/verifications", params={"limit": 200})).json()
        assert all(item["region_code"].startswith("36") for item in listed["items"])


class TestWaiting:
    async def test_the_waited_answer_is_what_is_stored(self, api_client: ClientFactory) -> None:
        """`Prefer: wait` answers from what the run handed back, without reading it back:
        it must say exactly what a later read of the stored verification says."""
        caseworker = await api_client()
        body = body_for(make_id_number("530103"))
        waited = await caseworker.post("/v1/verifications", json=body, headers=WAIT)
        assert waited.status_code == 200
        assert waited.json()["status"] == "completed"
        stored = await caseworker.get(f"/v1/verifications/{waited.json()['id']}")
        assert waited.json() == stored.json()
        assert {source["status"] for source in waited.json()["sources"]} <= {"ok", "no_record"}
        assert all(source["duration_ms"] is not None for source in waited.json()["sources"])


class TestDecision:
    async def _completed(self, api_client: ClientFactory) -> tuple[httpx.AsyncClient, str]:
        caseworker = await api_client()
        response = await caseworker.post(
            "/v1/verifications", json=body_for(make_id_number("530103")), headers=WAIT
        )
        assert response.status_code == 200
        return caseworker, response.json()["id"]

    async def test_approver_decides_once_and_decision_binds_the_report(
        self, api_client: ClientFactory
    ) -> None:
        caseworker, verification_id = await self._completed(api_client)
        approver = await api_client(role="approver", region="53", name="李科长 (五华区民政局)")
        computed = (await caseworker.get(f"/v1/verifications/{verification_id}/report")).json()
        decision = {"decision": "approve", "reason": "documents checked"}
        if not computed.get("benefit"):  # approved on the approver's own findings
            decision["monthly_benefit"] = "80.00"

        first = await approver.post(f"/v1/verifications/{verification_id}/decision", json=decision)
        second = await approver.post(f"/v1/verifications/{verification_id}/decision", json=decision)

        assert first.status_code == 201
        report = (await caseworker.get(f"/v1/verifications/{verification_id}/report")).json()
        assert first.json()["report_hash"] == report["report_hash"]
        assert second.status_code == 409
        listed = (await approver.get(f"/v1/verifications/{verification_id}")).json()
        assert [d["decision"] for d in listed["decisions"]] == ["approve"]
        # Whom the deciding key belongs to, not a key id (which is given apart).
        assert first.json()["decided_by"] == "李科长 (五华区民政局)"
        assert listed["decisions"][0]["decided_by"] == "李科长 (五华区民政局)"
        assert len(listed["decisions"][0]["decided_by_key_id"]) == 36

    async def test_caseworker_cannot_decide(self, api_client: ClientFactory) -> None:
        caseworker, verification_id = await self._completed(api_client)
        response = await caseworker.post(
            f"/v1/verifications/{verification_id}/decision",
            json={"decision": "approve", "reason": "x"},
        )
        assert response.status_code == 403

    async def test_creator_cannot_decide_even_as_admin(self, api_client: ClientFactory) -> None:
        admin = await api_client(role="admin", region="00")
        response = await admin.post(
            "/v1/verifications", json=body_for(make_id_number("530103")), headers=WAIT
        )
        decided = await admin.post(
            f"/v1/verifications/{response.json()['id']}/decision",
            json={"decision": "approve", "reason": "self"},
        )
        assert decided.status_code == 403


async def test_validation_messages_carry_no_library_prefix(api_client: ClientFactory) -> None:
    caseworker = await api_client()
    response = await caseworker.post("/v1/verifications", json=body_for("12345"))
    problem = response.json()
    assert problem["errors"][0]["msg"] == "ID number must be 18 characters"
    assert problem["detail"] == "body.members.0.id_number: ID number must be 18 characters"


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        (b'{"reference": "case-\xff"}', ["body", 20], "not UTF-8 encoded JSON"),
        (b"[" * 100_000 + b"]" * 100_000, ["body"], "JSON nested too deeply"),
        (b'{"reference": ', ["body", 14], "not valid JSON: Expecting value at offset 14"),
        (
            b'{"reference": "c1',
            ["body", 14],
            "not valid JSON: Unterminated string starting at offset 14",
        ),
        # JSON is UTF-8 (RFC 8259): no guessing of UTF-16 or UTF-32 from NUL bytes.
        ('{"reference": "x"}'.encode("utf-16"), ["body", 0], "not UTF-8 encoded JSON"),
        ('{"reference": "x"}'.encode("utf-32"), ["body", 0], "not UTF-8 encoded JSON"),
    ],
    ids=["not-utf8", "too-deep", "cut-short", "unterminated", "utf-16", "utf-32"],
)
async def test_a_body_that_is_not_json_is_a_validation_problem_naming_the_body(
    api_client: ClientFactory, body: bytes, loc: list[str | int], msg: str
) -> None:
    caseworker = await api_client()
    response = await caseworker.post(
        "/v1/verifications", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "/problems/validation"
    assert problem["errors"] == [{"loc": loc, "msg": msg}]
    assert problem["detail"] == f"{'.'.join(map(str, loc))}: {msg}"


async def test_a_number_is_not_a_date(api_client: ClientFactory) -> None:
    caseworker = await api_client()
    body = body_for(make_id_number("530103"))
    body["consent"]["signed_on"] = 0
    response = await caseworker.post("/v1/verifications", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "consent", "signed_on"]


async def test_unknown_route_is_a_typed_404_problem(api_client: ClientFactory) -> None:
    caseworker = await api_client()
    response = await caseworker.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/not-found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/verifications", "GET, HEAD, POST"),
        ("DELETE", "/healthz", "GET, HEAD"),
        ("POST", "/v1/connectors/bank", "GET, HEAD, PUT"),
        ("GET", "/v1/batches/x/close", "POST"),
    ],
)
async def test_a_method_a_path_does_not_take_is_405_naming_every_one_it_does(
    api_client: ClientFactory, method: str, path: str, allowed: str
) -> None:
    """Not only those of the first route found for the path (GET was left out for
    /v1/verifications, whose POST is another route)."""
    admin = await api_client(role="admin", region="00")
    response = await admin.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"
    problem_type = response.json()["type"]
    assert problem_type == "/problems/method-not-allowed"
    assert (await admin.get(problem_type)).status_code == 200  # served, as every type is


async def test_head_is_answered_wherever_get_is_without_a_body(
    http: httpx.AsyncClient, api_client: ClientFactory
) -> None:
    """Load balancers probe `/healthz` with HEAD."""
    got, headed = await http.get("/healthz"), await http.head("/healthz")
    assert (headed.status_code, headed.content) == (200, b"")
    assert headed.headers["content-length"] == got.headers["content-length"]
    assert headed.headers["content-type"] == got.headers["content-type"]
    caseworker = await api_client()
    listed, headed = (
        await caseworker.get("/v1/verifications"),
        await caseworker.head("/v1/verifications"),
    )
    assert (headed.status_code, headed.content) == (200, b"")
    assert headed.headers["content-length"] == listed.headers["content-length"]
    refused = await http.head("/v1/verifications")  # no key: the GET's answer, bodiless
    assert (refused.status_code, refused.content) == (401, b"")
    assert refused.headers["content-type"] == "application/problem+json"


async def test_openapi_documents_problem_json(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    responses = schema["paths"]["/v1/verifications"]["post"]["responses"]
    assert responses["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
