"""Seeding people: validation, masking, upsert semantics and persistence across restarts."""

import logging
import os
from pathlib import Path

import httpx
import pytest

from sandbox import create_sandbox_app
from sandbox.records import Person
from sandbox.state import SandboxState
from tests.sandbox.helpers import ALICE, BOB, FindSynthetic, Seed

FULL_PERSON = {
    "id_number": ALICE,
    "vehicles": [
        {"plate": "云A12345", "type": "car", "registered_on": "2019-05-01", "value": 85000}
    ],
    "pension": {"status": "receiving", "monthly_amount": 1200},
    "housing_fund": {"status": "active", "balance": 20000, "monthly_deposit": 600},
    "real_estate": [
        {
            "certificate": "云(2019)昆明市不动产权第0001号",
            "usage": "residential",
            "area_m2": 80,
            "region_code": "530102",
        }
    ],
    "public_payroll": {"employer": "某某局", "monthly_salary": 4500},
    "bank_accounts": [{"bank": "中国工商银行", "account": "6222020200112233", "balance": 3000}],
}


async def pension_of(client: httpx.AsyncClient, id_number: str) -> dict[str, object]:
    response = await client.post(
        "/pensions/batch", json={"requests": [{"seq": 1, "sfzh": id_number}]}
    )
    result: dict[str, object] = response.json()["results"][0]
    return result


class TestSeed:
    async def test_answers_with_the_masked_id_number(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/people", json=FULL_PERSON)

        assert response.status_code == 200
        assert response.json() == {"id_number": "110105********002X", "seeded": True}

    async def test_accepts_a_lower_case_check_character(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/people", json={"id_number": ALICE.lower(), "pension": {"status": "none"}}
        )

        assert response.status_code == 200
        assert await pension_of(client, ALICE) == {
            "seq": 1,
            "found": True,
            "status": "none",
            "monthly_amount": "0.00",
        }

    @pytest.mark.parametrize(
        "id_number",
        ["11010519491231002Y", "110105194912310021", "11010519491331002X", "1101051949123100"],
        ids=["bad-character", "bad-check", "bad-date", "too-short"],
    )
    async def test_rejects_an_invalid_id_number_without_echoing_it(
        self, client: httpx.AsyncClient, id_number: str
    ) -> None:
        response = await client.post("/people", json={"id_number": id_number})

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "/problems/validation"
        assert problem["errors"][0]["loc"] == ["body", "id_number"]
        assert problem["detail"].startswith("body.id_number: ")
        assert id_number not in response.text

    async def test_rejects_unknown_fields(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/people", json={**FULL_PERSON, "lottery": {"owed": 1}})

        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"loc": ["body", "lottery"], "msg": "Extra inputs are not permitted"}
        ]

    async def test_an_unknown_field_holding_an_id_number_is_named_masked(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/people", json={**FULL_PERSON, ALICE: 1})

        assert response.status_code == 422
        (error,) = response.json()["errors"]
        assert error["loc"][0] == "body"
        assert ALICE not in response.text

    @pytest.mark.parametrize(
        ("body", "loc", "msg"),
        [
            (b'{"id_number": "\xff"}', ["body", 15], "not UTF-8 encoded JSON"),
            (b'{"id_number": ', ["body", 14], "not valid JSON: Expecting value at offset 14"),
        ],
        ids=["not-utf8", "cut-short"],
    )
    async def test_a_body_that_is_not_json_is_a_problem_naming_the_body(
        self, client: httpx.AsyncClient, body: bytes, loc: list[str | int], msg: str
    ) -> None:
        response = await client.post(
            "/people", content=body, headers={"content-type": "application/json"}
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"] == [{"loc": loc, "msg": msg}]
        described = await client.get(response.json()["type"])
        assert described.status_code == 200

    async def test_rejects_unknown_fields_inside_a_section(self, client: httpx.AsyncClient) -> None:
        body = {"id_number": ALICE, "pension": {"status": "receiving", "monthly_amount": 1, "x": 1}}

        response = await client.post("/people", json=body)

        assert response.status_code == 422

    @pytest.mark.parametrize(
        "section",
        [
            {"pension": {"status": "retired", "monthly_amount": 1}},
            {"housing_fund": {"status": "active", "balance": -1}},
            {"bank_accounts": [{"bank": "b", "account": "12", "balance": 1}]},
            {
                "vehicles": [
                    {"plate": "云A1", "type": "car", "registered_on": "2019-02-30", "value": 1}
                ]
            },
            {
                "real_estate": [
                    {"certificate": "c", "usage": "land", "area_m2": 1, "region_code": "53"}
                ]
            },
            {"public_payroll": {"employer": "局", "monthly_salary": "12.345"}},
        ],
        ids=["status", "negative", "account", "date", "region", "three-decimals"],
    )
    async def test_rejects_invalid_sections(
        self, client: httpx.AsyncClient, section: dict[str, object]
    ) -> None:
        response = await client.post("/people", json={"id_number": ALICE, **section})

        assert response.status_code == 422

    async def test_a_rejected_seed_stores_nothing(
        self, client: httpx.AsyncClient, state: SandboxState, data_path: Path
    ) -> None:
        await client.post("/people", json={**FULL_PERSON, "unknown": 1})

        assert len(state.people) == 0
        assert len(create_sandbox_app(data_path).state.sandbox.people) == 0


class TestSeededRecords:
    async def test_seeding_overrides_synthetic_records(
        self, client: httpx.AsyncClient, seed: Seed, synthetic_id: FindSynthetic
    ) -> None:
        id_number = synthetic_id(lambda person: person.pension is not None)
        assert (await pension_of(client, id_number))["found"] is True

        await seed(id_number, public_payroll={"employer": "某某局", "monthly_salary": 4500})

        assert await pension_of(client, id_number) == {"seq": 1, "found": False}

    async def test_an_upsert_replaces_the_whole_person(
        self, client: httpx.AsyncClient, seed: Seed
    ) -> None:
        await seed(ALICE, pension={"status": "receiving", "monthly_amount": 1200})

        await seed(ALICE, housing_fund={"status": "closed", "balance": 10})

        assert await pension_of(client, ALICE) == {"seq": 1, "found": False}

    async def test_forgetting_people_restores_synthetic_records(
        self, client: httpx.AsyncClient, seed: Seed
    ) -> None:
        synthetic = await pension_of(client, BOB)
        await seed(BOB)
        assert await pension_of(client, BOB) == {"seq": 1, "found": False}

        response = await client.delete("/people")

        assert response.json() == {"deleted": 1}
        assert await pension_of(client, BOB) == synthetic


class TestPersistence:
    async def test_seeded_people_survive_a_new_app_on_the_same_file(
        self, client: httpx.AsyncClient, data_path: Path
    ) -> None:
        await client.post("/people", json=FULL_PERSON)

        restarted = create_sandbox_app(data_path)
        transport = httpx.ASGITransport(app=restarted)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as fresh:
            assert await pension_of(fresh, ALICE) == {
                "seq": 1,
                "found": True,
                "status": "receiving",
                "monthly_amount": "1200.00",
            }
            assert restarted.state.sandbox.people.lookup(ALICE) == Person.model_validate(
                FULL_PERSON
            )

    async def test_forgetting_people_is_persisted(
        self, client: httpx.AsyncClient, seed: Seed, data_path: Path
    ) -> None:
        await seed(ALICE)
        await client.delete("/people")

        assert len(create_sandbox_app(data_path).state.sandbox.people) == 0

    async def test_without_a_path_nothing_is_written(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        app = create_sandbox_app()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://s"
        ) as client:
            response = await client.post("/people", json=FULL_PERSON)

        assert response.status_code == 200
        assert os.listdir(tmp_path) == []


class TestPrivacy:
    async def test_nothing_personal_is_logged_or_printed(
        self,
        client: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        caplog.set_level(logging.DEBUG)

        await client.post("/people", json=FULL_PERSON)
        await client.post("/people", json={**FULL_PERSON, "id_number": "11010519491231002Y"})
        await client.put("/faults/bank", json={"mode": "error"})
        await pension_of(client, ALICE)
        await client.post("/bank/inquiries", json={"customers": [{"id_number": ALICE}]})

        captured = capsys.readouterr()
        for text in (caplog.text, captured.out, captured.err):
            assert ALICE not in text
            assert "11010519491231002Y" not in text
            assert "3000" not in text
            assert "6222020200112233" not in text
