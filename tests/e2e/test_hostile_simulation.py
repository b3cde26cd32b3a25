"""Overrides a hostile analyst sends to `POST /v1/policy/simulate`, against the running
service: each is a 422 naming the override, never a 500, and no household's figures reach
the log."""

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.models import SourceResult
from tests.conftest import ClientFactory
from tests.e2e.test_rules_and_reproduction import verified
from tests.factories import make_id_number

REGION = "530114"  # used by this module alone
PENSION = "1234.58"
DEPOSIT = "321.09"
HUGE_DEPOSIT = "20000000000000.00"


async def simulate(client: httpx.AsyncClient, overrides: object) -> httpx.Response:
    """Sent as ASCII JSON, so a lone surrogate travels as the `\\ud800` escape it is."""
    body = {"region_code": REGION, "program": "dibao", "area": "urban", "overrides": overrides}
    return await client.post(
        "/v1/policy/simulate",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )


@pytest.fixture
async def analyst(http: httpx.AsyncClient, api_client: ClientFactory) -> httpx.AsyncClient:
    """An approver of the region, which holds two completed two-member households: one with
    a pension and housing-fund deposits, one with no income at all."""
    caseworker = await api_client(region=REGION)
    pensioner = {
        "pension": {"status": "receiving", "monthly_amount": PENSION},
        "housing_fund": {"status": "active", "balance": 1000, "monthly_deposit": DEPOSIT},
    }
    for sections in (pensioner, {}):
        await verified(
            http,
            caseworker,
            [
                (make_id_number(REGION), sections, PENSION if sections else 0),
                (make_id_number(REGION, "20150301"), {}, 0),
            ],
            REGION,
        )
    return await api_client(role="approver", region=REGION)


def assert_refused(response: httpx.Response, loc: list[str | int]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        # (standard − per-capita income) × 2 no longer fits an amount's 16 digits.
        ({"monthly_standard": "99999999999999.99"}, "monthly_standard"),
        # A deposit ÷ 1E-30: an implied wage of 33 digits.
        ({"housing_fund_contribution_rate": "1E-30"}, "housing_fund_contribution_rate"),
        ({"housing_fund_contribution_rate": 1e-30}, "housing_fund_contribution_rate"),
        ({"special_aid_cap": "99999999999999.99"}, "special_aid_cap"),
    ],
)
async def test_figures_out_of_range_are_422_and_no_amount_is_logged(
    analyst: httpx.AsyncClient,
    capfd: pytest.CaptureFixture[str],
    overrides: dict[str, Any],
    field: str,
) -> None:
    capfd.readouterr()

    response = await simulate(analyst, overrides)

    assert_refused(response, ["body", "overrides", field])
    logged = "".join(capfd.readouterr())
    for text in (PENSION, DEPOSIT, "input_value", "unhandled_error", "Traceback"):
        assert text not in logged


async def test_figures_at_their_bounds_are_simulated(analyst: httpx.AsyncClient) -> None:
    response = await simulate(
        analyst, {"monthly_standard": "1000000", "housing_fund_contribution_rate": "0.01"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["verifications"] >= 2


@pytest.mark.parametrize(
    "field",
    [
        "asset_months",
        "max_dwellings",
        "linshi_benefit_months",
        "recheck_regular_months",
        "recheck_other_months",
        "consent_valid_months",
        "housing_fund_contribution_rate",
        "income_gap_ratio",
        "taxed_income_ratio",
        "social_insurance_base_ratio",
        "monthly_standard",
        "vehicle_value_threshold",
        "business_stake",
    ],
)
async def test_true_is_not_the_number_1(analyst: httpx.AsyncClient, field: str) -> None:
    """`{"asset_months": true}` was simulated as 1 month (and flipped households)."""
    response = await simulate(analyst, {field: True})

    assert_refused(response, ["body", "overrides", field])


async def test_counts_given_as_json_numbers_are_simulated(analyst: httpx.AsyncClient) -> None:
    response = await simulate(analyst, {"asset_months": 1, "max_dwellings": 1})

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"\ud800": 1}, ["body", "overrides"]),
        ({"monthly_standard": 700, "\udfff": 1}, ["body", "overrides"]),
        ({"vehicle_exempt_types": ["\ud800"]}, ["body", "overrides", "vehicle_exempt_types"]),
        (
            {"support_mode_standards": {"\ud800": 1}},
            ["body", "overrides", "support_mode_standards"],
        ),
        (
            {"care_subsidies": {"concentrated": {"\ud800": 1}}},
            ["body", "overrides", "care_subsidies"],
        ),
        ({"monthly_standard": "\ud800"}, ["body", "overrides", "monthly_standard"]),
    ],
)
async def test_a_lone_surrogate_is_422_and_the_connection_stays_good(
    analyst: httpx.AsyncClient, overrides: dict[str, Any], loc: list[str]
) -> None:
    """Sent as the JSON escape `\\ud800`, which decodes to text no UTF-8 answer or content
    hash can carry: the answer failed (a 500, the connection dropped)."""
    response = await simulate(analyst, overrides)

    assert_refused(response, loc)
    assert "lone surrogate" in response.json()["errors"][0]["msg"]
    assert (await simulate(analyst, {"asset_months": 12})).status_code == 200


async def test_figures_in_bounds_that_carry_a_household_out_of_range_are_422(
    http: httpx.AsyncClient,
    api_client: ClientFactory,
    session_factory: async_sessionmaker[AsyncSession],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A partner may report a deposit of 20,000,000,000,000.00 (an amount like any other):
    at 24% its implied wage fits an amount, at the lowest rate, 1%, it does not."""
    region = "530115"  # this household alone, so no other test meets it
    caseworker = await api_client(region=region)
    fund = {"status": "active", "balance": 1000, "monthly_deposit": DEPOSIT}
    report = await verified(
        http, caseworker, [(make_id_number(region), {"housing_fund": fund}, 0)], region
    )
    async with session_factory() as session:
        result = await session.scalar(
            select(SourceResult).where(
                SourceResult.verification_id == report["verification_id"],
                SourceResult.source == "housing_fund",
            )
        )
        assert result is not None
        result.records = [record | {"monthly_deposit": HUGE_DEPOSIT} for record in result.records]
        await session.commit()
    analyst = await api_client(role="approver", region=region)
    what_if = {"region_code": region, "program": "dibao", "area": "urban"}
    assert (
        await analyst.post(
            "/v1/policy/simulate", json=what_if | {"overrides": {"asset_months": 12}}
        )
    ).status_code == 200
    capfd.readouterr()

    response = await analyst.post(
        "/v1/policy/simulate",
        json=what_if | {"overrides": {"housing_fund_contribution_rate": "0.01"}},
    )

    assert_refused(response, ["body", "overrides", "housing_fund_contribution_rate"])
    assert report["verification_id"] in response.json()["errors"][0]["msg"]
    logged = "".join(capfd.readouterr())
    for text in (HUGE_DEPOSIT, "2000000000000000", "input_value", "Traceback"):
        assert text not in logged + response.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"monthly_standard": -1}, "monthly_standard"),
        ({"monthly_standard": "0"}, "monthly_standard"),
        ({"asset_months": 100000}, "asset_months"),
    ],
)
async def test_figures_no_policy_file_could_give_are_422_where_no_household_is(
    api_client: ClientFactory, overrides: dict[str, Any], field: str
) -> None:
    """Whether a request is valid does not depend on what is stored: the same figures are
    refused in a region with no verification of the program as in one with many."""
    empty = await api_client(role="approver", region="11")
    response = await empty.post(
        "/v1/policy/simulate",
        json={"region_code": "11", "program": "tekun", "area": "rural", "overrides": overrides},
    )

    assert_refused(response, ["body", "overrides", field])
