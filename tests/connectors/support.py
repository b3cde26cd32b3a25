"""Households and partner answers shared by the connector tests."""

from datetime import date
from typing import ClassVar

import httpx

from connectors.base import CheckResult, Connector, ConnectorConfig
from connectors.testing import Fault, FetchRun, PartnerDouble, PartnerSetup, run_fetch
from schemas.evidence import Evidence, HouseholdQuery, MemberQuery, RequestContext
from tests.factories import make_id_number

A = "11010519491231002X"
B = "440524188001010014"
FOREIGN = make_id_number(region="530102", birth="19800101", sequence=7)


class PluginDouble:
    """A plugin connector registered by a test: its check passes, and its partner holds
    nothing about anyone asked. A test names it and overrides what it needs to differ."""

    name: ClassVar[str] = "double"
    title: ClassVar[str] = "a plugin double"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    async def check(self, config: ConnectorConfig, client: httpx.AsyncClient) -> CheckResult:
        return CheckResult(ok=True)

    async def fetch(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence:
        return Evidence(answered=household.id_numbers)


def household(*id_numbers: str) -> HouseholdQuery:
    return HouseholdQuery(
        region_code="530102",
        as_of=date(2026, 11, 20),
        members=tuple(MemberQuery(id_number=id_number) for id_number in id_numbers),
        context=RequestContext(consent_id="AUTH-0001", purpose="dibao"),
    )


def base_url(connector: Connector) -> str:
    return f"https://partner.test/{connector.name}"


async def fetch(
    connector: Connector,
    members: HouseholdQuery,
    setup: PartnerSetup,
    *faults: Fault,
    **config: object,
) -> FetchRun:
    """`connector.fetch` against respx routes, with the config fields given."""
    partner = PartnerDouble(base_url(connector), setup).fail_next(*faults)
    settings: ConnectorConfig = connector.Config.model_validate(
        {"base_url": base_url(connector), **config}
    )
    return await run_fetch(connector, members, partner, settings)
