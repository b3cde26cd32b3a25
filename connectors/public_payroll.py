"""财政供养 public payroll: JSON with pinyin keys, the whole household per call.

Only people on payroll appear in `rows`: an absent member simply has no record.
"""

from typing import ClassVar, Literal

import httpx
from pydantic import Field

from connectors.base import ConnectorConfig
from connectors.http import request
from connectors.partner import PartnerConnector
from connectors.wire import PartnerIdNumber, WireAmount, WireModel, parse_json
from schemas.evidence import Evidence, HouseholdQuery, PayrollRecord, Record


class _Row(WireModel):
    sfzh: PartnerIdNumber  # 身份证号 ID number
    gzdw: str = Field(min_length=1)  # 工作单位 employer
    yfgz: WireAmount  # 应发工资 monthly gross salary


class _Answer(WireModel):
    flag: Literal["1"]
    rows: list[_Row]


class _Health(WireModel):
    flag: Literal["1"]


class PublicPayrollConnector(PartnerConnector[ConnectorConfig]):
    name: ClassVar[str] = "public_payroll"
    title: ClassVar[str] = "财政供养 public payroll"
    version: ClassVar[str] = "1.0.0"
    kinds: ClassVar[tuple[str, ...]] = ("payroll",)
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    health_path: ClassVar[str] = "/ping"
    health_model: ClassVar[type[WireModel]] = _Health

    async def ask(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        records = await request(
            client,
            config,
            "POST",
            "/verify",
            _records,
            json={"sfzh_list": household.id_numbers},
        )
        # Only hits are listed: the one answer covers everyone it was asked about.
        return Evidence(records=records, answered=household.id_numbers)


def _records(body: bytes) -> list[Record]:
    return [
        PayrollRecord(id_number=row.sfzh, employer=row.gzdw, monthly_salary=row.yfgz)
        for row in parse_json(body, _Answer).rows
    ]
