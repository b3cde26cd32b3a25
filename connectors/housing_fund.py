"""住房公积金 housing fund: one form-encoded call per member, asked concurrently; amounts in fen."""

from decimal import Decimal
from functools import partial
from typing import ClassVar, Literal

import httpx
from pydantic import Field, StrictInt

from connectors.base import ConnectorConfig, MalformedResponse
from connectors.http import map_concurrently, request
from connectors.partner import PartnerConnector
from connectors.wire import WireModel, json_parser, safe_code
from schemas.evidence import Evidence, HouseholdQuery, HousingFundRecord

FOUND = "0000"
NO_ACCOUNT = "0404"
STATUSES: dict[str, Literal["active", "closed"]] = {"01": "active", "02": "closed"}


class HousingFundConfig(ConnectorConfig):
    concurrency: int = Field(default=10, ge=1, le=100, description="Members asked at the same time")


class _Account(WireModel):
    zhzt: Literal["01", "02"]
    ye: StrictInt = Field(ge=0)
    yjce: StrictInt = Field(ge=0)


class _Answer(WireModel):
    ret: str
    data: _Account | None = None


class _Health(WireModel):
    ret: Literal["0000"]


def fen_to_yuan(fen: int) -> Decimal:
    """Exact: 2000000 fen is Decimal("20000.00") yuan."""
    return Decimal(fen).scaleb(-2)


class HousingFundConnector(PartnerConnector[HousingFundConfig]):
    name: ClassVar[str] = "housing_fund"
    title: ClassVar[str] = "住房公积金 housing fund"
    version: ClassVar[str] = "1.0.0"
    kinds: ClassVar[tuple[str, ...]] = ("housing_fund",)
    Config: ClassVar[type[ConnectorConfig]] = HousingFundConfig
    health_path: ClassVar[str] = "/status"
    health_model: ClassVar[type[WireModel]] = _Health

    async def ask(
        self, household: HouseholdQuery, config: HousingFundConfig, client: httpx.AsyncClient
    ) -> Evidence:
        ids = household.id_numbers
        answers = await map_concurrently(
            partial(_ask, client, config), ids, limit=config.concurrency
        )
        # One call per member: each answer covers the member it was asked about.
        return Evidence(records=[record for record in answers if record is not None], answered=ids)


async def _ask(
    client: httpx.AsyncClient, config: HousingFundConfig, id_number: str
) -> HousingFundRecord | None:
    answer = await request(
        client, config, "POST", "/account/query", json_parser(_Answer), data={"zjhm": id_number}
    )
    if answer.ret == NO_ACCOUNT:
        # "No account" that carries an account contradicts itself: not "no record".
        if answer.data is not None:
            raise MalformedResponse(f"ret {NO_ACCOUNT} (no account) with an account's data")
        return None
    if answer.ret != FOUND or answer.data is None:
        raise MalformedResponse(f"unexpected ret {safe_code(answer.ret)} or missing data")
    # The answer does not repeat the ID number: the record belongs to the one we asked about.
    return HousingFundRecord(
        id_number=id_number,
        status=STATUSES[answer.data.zhzt],
        balance=fen_to_yuan(answer.data.ye),
        monthly_deposit=fen_to_yuan(answer.data.yjce),
    )
