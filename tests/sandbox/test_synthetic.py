"""Synthetic records: deterministic per ID number, plausible in aggregate."""

import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount
from typer.testing import CliRunner

from sandbox import create_sandbox_app, server
from sandbox.records import Person
from sandbox.synthetic import synthetic_person
from service import cli
from service.app import create_app
from service.config import Settings
from tests.sandbox.helpers import ALICE, FindSynthetic, valid_id


def sample(count: int) -> list[Person]:
    """Synthetic people for random valid IDs, the way a load test draws them."""
    rng = random.Random(20261120)  # noqa: S311  # a fixed sample, not a secret
    people = []
    for _ in range(count):
        first17 = (
            f"{rng.choice(['530102', '360102', '110105', '440524'])}"
            f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            f"{rng.randrange(1000):03d}"
        )
        person = synthetic_person(valid_id(first17))
        assert person is not None
        people.append(person)
    return people


def amounts(person: Person) -> list[Decimal]:
    values = [vehicle.value for vehicle in person.vehicles or ()]
    values += [account.balance for account in person.bank_accounts or ()]
    if person.pension:
        values.append(person.pension.monthly_amount)
    if person.housing_fund:
        values += [person.housing_fund.balance, person.housing_fund.monthly_deposit]
    if person.public_payroll:
        values.append(person.public_payroll.monthly_salary)
    return values


class TestDeterminism:
    def test_the_same_id_yields_the_same_records(self) -> None:
        first = synthetic_person(ALICE)
        synthetic_person.cache_clear()

        assert synthetic_person(ALICE) == first

    async def test_two_sandboxes_answer_alike(self) -> None:
        """A never-seeded person looks the same from any process: nothing is stored."""
        answers = []
        for _ in range(2):
            synthetic_person.cache_clear()
            transport = httpx.ASGITransport(app=create_sandbox_app())
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                response = await client.post(
                    "/bank/inquiries", json={"customers": [{"id_number": ALICE}]}
                )
                poll = await client.get(f"/bank/inquiries/{response.json()['inquiry_id']}")
                answers.append(poll.json()["accounts"])

        assert answers[0] == answers[1]

    def test_different_ids_yield_different_records(self) -> None:
        people = sample(50)

        assert len({person.model_dump_json(exclude={"id_number"}) for person in people}) == 50

    def test_a_lower_case_x_is_the_same_person(self) -> None:
        people = create_sandbox_app().state.sandbox.people

        assert people.lookup(ALICE.lower()) == people.lookup(ALICE)

    @pytest.mark.parametrize("id_number", ["", "123", "11010519491231002Y", "110105194912310021"])
    def test_an_invalid_id_number_has_no_records(self, id_number: str) -> None:
        assert synthetic_person(id_number) is None


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return sample(4000)


class TestPlausibility:
    @pytest.mark.parametrize(
        ("has_record", "rate"),
        [
            (lambda p: any(v.type == "car" for v in p.vehicles or ()), 0.15),
            (lambda p: p.pension is not None and p.pension.status == "receiving", 0.30),
            (lambda p: p.public_payroll is not None, 0.10),
            (lambda p: p.housing_fund is not None, 0.20),
            (lambda p: bool(p.real_estate) and p.real_estate[0].usage == "residential", 0.60),
        ],
        ids=["car", "pension", "payroll", "housing-fund", "property"],
    )
    def test_roughly_the_intended_share_has_a_record(
        self, people: list[Person], has_record: Callable[[Person], bool], rate: float
    ) -> None:
        share = sum(1 for person in people if has_record(person)) / len(people)

        assert share == pytest.approx(rate, abs=0.03)

    def test_amounts_fall_in_their_ranges(self, people: list[Person]) -> None:
        for person in people:
            for vehicle in person.vehicles or ():
                low, high = (20_000, 200_000) if vehicle.type == "car" else (2_000, 12_000)
                assert low <= vehicle.value <= high
            if person.pension and person.pension.status == "receiving":
                assert 800 <= person.pension.monthly_amount <= 3000

    def test_most_balances_are_modest_a_few_large(self, people: list[Person]) -> None:
        balances = sorted(a.balance for p in people for a in p.bank_accounts or ())

        assert balances[len(balances) // 2] < 15_000
        assert 0 < sum(1 for b in balances if b > 50_000) / len(balances) < 0.06

    def test_payroll_staff_always_have_an_active_housing_fund(self, people: list[Person]) -> None:
        staff = [person for person in people if person.public_payroll]

        assert staff
        assert all(p.housing_fund is not None and p.housing_fund.status == "active" for p in staff)

    def test_amounts_have_two_decimals(self, people: list[Person]) -> None:
        for person in people:
            assert all(amount.as_tuple().exponent == -2 for amount in amounts(person))

    def test_records_satisfy_the_seeding_model(self, people: list[Person]) -> None:
        """Synthetic records skip validation for speed; they must still be valid."""
        for person in people[:300]:
            assert Person.model_validate(person.model_dump()) == person


class TestWithoutSyntheticPeople:
    """`synthetic=False`: a person nobody seeded has no records at any agency."""

    @staticmethod
    async def pension_and_vehicles(app: FastAPI, id_number: str) -> tuple[bool, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            pension = await client.post(
                "/pensions/batch", json={"requests": [{"seq": 1, "sfzh": id_number}]}
            )
            vehicles = await client.post(
                "/vehicles/query",
                content=f'<VehicleQuery><Person idNumber="{id_number}"/></VehicleQuery>',
                headers={"Content-Type": "application/xml"},
            )
        return pension.json()["results"][0]["found"], vehicles.text

    async def test_an_unseeded_person_has_no_records(
        self, synthetic_id: FindSynthetic, tmp_path: Path
    ) -> None:
        owner = synthetic_id(lambda person: bool(person.vehicles) and person.pension is not None)
        plate = synthetic_person(owner).vehicles[0].plate  # type: ignore[union-attr,index]

        with_synthetic = await self.pension_and_vehicles(create_sandbox_app(), owner)
        without = await self.pension_and_vehicles(
            create_sandbox_app(tmp_path / "s.db", synthetic=False), owner
        )

        assert with_synthetic[0] is True
        assert plate in with_synthetic[1]
        assert without[0] is False
        assert plate not in without[1]

    async def test_a_seeded_person_still_has_their_records(self, tmp_path: Path) -> None:
        app = create_sandbox_app(tmp_path / "s.db", synthetic=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            seeded = await client.post(
                "/people",
                json={"id_number": ALICE, "pension": {"status": "receiving", "monthly_amount": 9}},
            )
            answer = await client.post(
                "/pensions/batch", json={"requests": [{"seq": 1, "sfzh": ALICE}]}
            )

        assert seeded.status_code == 200
        assert answer.json()["results"][0]["found"] is True

    def test_the_service_setting_reaches_the_mounted_sandbox(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("HEDUI_SANDBOX_SYNTHETIC", "off")
        app = create_app(Settings(sandbox="on", sandbox_data=tmp_path / "s.db"))

        (mounted,) = [r for r in app.routes if isinstance(r, Mount) and r.path == "/sandbox"]
        assert mounted.app.state.sandbox.people.synthetic is False  # type: ignore[attr-defined]

    @pytest.mark.parametrize(("flag", "synthetic"), [("--no-synthetic", False), (None, True)])
    def test_hedui_sandbox_takes_the_flag(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        flag: str | None,
        synthetic: bool,
    ) -> None:
        served: dict[str, object] = {}
        monkeypatch.setattr(
            server.uvicorn, "run", lambda app, **options: served.update(app=app, **options)
        )
        monkeypatch.delenv("HEDUI_SANDBOX_SYNTHETIC", raising=False)
        args = ["sandbox", "--data", str(tmp_path / "s.db"), *([flag] if flag else [])]

        result = CliRunner().invoke(cli.app, args)

        assert result.exit_code == 0, result.output
        assert served["app"].state.sandbox.people.synthetic is synthetic  # type: ignore[attr-defined]
