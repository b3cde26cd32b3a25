"""社保缴费 social-insurance contributions: one member per form-encoded call.

A hedui connector plugin: it implements hedui's `Connector` contract through hedui's own
`PartnerConnector` base (retries, time budget and byte limits come with it) and is found
through the `hedui.connectors` entry point declared in this package's pyproject.toml.
"""

from functools import partial
from typing import ClassVar, Literal

import httpx
from pydantic import Field

from connectors.base import ConnectorConfig, MalformedResponse
from connectors.http import map_concurrently, request
from connectors.partner import PartnerConnector
from connectors.wire import PartnerIdNumber, WireAmount, WireModel, parse_json
from schemas.evidence import Evidence, HouseholdQuery, MemberQuery, SocialInsuranceRecord

__all__ = ["SocialInsuranceConfig", "SocialInsuranceConnector"]

_STATUS: dict[str, Literal["contributing", "suspended"]] = {
    "1": "contributing",
    "2": "suspended",
}


class SocialInsuranceConfig(ConnectorConfig):
    concurrency: int = Field(default=5, ge=1, le=50, description="Members asked at the same time")


class _Row(WireModel):
    aab004: str = Field(min_length=1)  # 单位名称 employer
    aac008: Literal["1", "2"]  # 人员参保状态 contribution status
    aic020: WireAmount = Field(ge=0)  # 缴费基数 monthly contribution base, yuan


class _Data(WireModel):
    aac002: PartnerIdNumber  # 公民身份号码 ID number, echoed
    list: list[_Row]


class _Answer(WireModel):
    code: Literal[0]
    data: _Data


class _Health(WireModel):
    code: Literal[0]


class SocialInsuranceConnector(PartnerConnector[SocialInsuranceConfig]):
    name: ClassVar[str] = "social_insurance"
    title: ClassVar[str] = "社保缴费 social-insurance contributions"
    version: ClassVar[str] = "1.0.0"
    kinds: ClassVar[tuple[str, ...]] = ("social_insurance",)
    Config: ClassVar[type[ConnectorConfig]] = SocialInsuranceConfig
    health_path: ClassVar[str] = "/ping"
    health_model: ClassVar[type[WireModel]] = _Health

    async def ask(
        self, household: HouseholdQuery, config: SocialInsuranceConfig, client: httpx.AsyncClient
    ) -> Evidence:
        answers = await map_concurrently(
            partial(self._member, client, config), household.members, limit=config.concurrency
        )
        return Evidence(
            records=[record for answer in answers for record in answer.records],
            answered=[id_number for answer in answers for id_number in answer.answered],
        )

    async def _member(
        self, client: httpx.AsyncClient, config: SocialInsuranceConfig, member: MemberQuery
    ) -> Evidence:
        data = await request(
            client, config, "POST", "/query", _data, data={"aac002": member.id_number}
        )
        if data.aac002.upper() != member.id_number.upper():
            raise MalformedResponse("answer for an ID number that was not asked for")
        return Evidence(
            records=[
                SocialInsuranceRecord(
                    id_number=member.id_number,
                    employer=row.aab004,
                    status=_STATUS[row.aac008],
                    monthly_base=row.aic020,
                )
                for row in data.list
            ],
            answered=[data.aac002],
        )


def _data(body: bytes) -> _Data:
    return parse_json(body, _Answer).data
