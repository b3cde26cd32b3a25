"""不动产登记 real estate: paginated JSON, the whole household per search.

The client repeats the same body with the partner's `next_page_token` until it is null.
A partner that hands out the same token twice or never stops is malformed, not endless.
"""

from typing import ClassVar, Literal

import httpx
from pydantic import Field

from connectors.base import ConnectorConfig, MalformedResponse, ResponseTooLarge
from connectors.http import request
from connectors.partner import PartnerConnector
from connectors.wire import PartnerIdNumber, WireAmount, WireModel, parse_json
from schemas.evidence import Evidence, HouseholdQuery, PropertyRecord, Record

MAX_PAGE_SIZE = 20


class RealEstateConfig(ConnectorConfig):
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    max_pages: int = Field(
        default=100, ge=1, description="Guard against a partner that never stops"
    )


class _Item(WireModel):
    owner_id_number: PartnerIdNumber
    certificate: str = Field(min_length=1)
    usage: Literal["residential", "commercial", "land"]
    area_m2: WireAmount
    region_code: str


class _Page(WireModel):
    items: list[_Item]
    next_page_token: str | None  # required: null marks the last page


class _Health(WireModel):
    status: Literal["up"]


class RealEstateConnector(PartnerConnector[RealEstateConfig]):
    name: ClassVar[str] = "real_estate"
    title: ClassVar[str] = "不动产登记 real estate"
    version: ClassVar[str] = "1.0.0"
    kinds: ClassVar[tuple[str, ...]] = ("property",)
    Config: ClassVar[type[ConnectorConfig]] = RealEstateConfig
    health_path: ClassVar[str] = "/health"
    health_model: ClassVar[type[WireModel]] = _Health

    async def ask(
        self, household: HouseholdQuery, config: RealEstateConfig, client: httpx.AsyncClient
    ) -> Evidence:
        body = {"id_numbers": household.id_numbers}
        records: list[Record] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(config.max_pages):
            params: dict[str, str | int] = {"page_size": config.page_size}
            if token is not None:
                params["page_token"] = token
            page, token = await request(
                client,
                config,
                "POST",
                "/registrations/search",
                _page,
                params=params,
                json=body,
            )
            records += page
            if len(records) > config.max_records:
                raise ResponseTooLarge.over_records(config.max_records)
            if token is None:
                # Only registrations are listed: the last page completes the answer about
                # every owner searched for.
                return Evidence(records=records, answered=household.id_numbers)
            if token in seen:
                raise MalformedResponse("pagination token repeats")
            seen.add(token)
        raise MalformedResponse(f"more than {config.max_pages} pages")


def _page(body: bytes) -> tuple[list[Record], str | None]:
    page = parse_json(body, _Page)
    return [_record(item) for item in page.items], page.next_page_token


def _record(item: _Item) -> PropertyRecord:
    return PropertyRecord(
        id_number=item.owner_id_number,
        certificate=item.certificate,
        usage=item.usage,
        area_m2=item.area_m2,
        region_code=item.region_code,
    )
