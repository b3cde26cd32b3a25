"""银行存款查询 bank balances: asynchronous, as real bank inquiries are.

Submit one inquiry for the household, then poll it: once immediately, then backing off
from `poll_initial_s` doubling up to `poll_max_s`, all within the fetch's `timeout_s`.
Account numbers are masked to their last 4 digits before they enter a record.
"""

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import ClassVar, Literal, Self

import httpx
from pydantic import Field, model_validator

from connectors.base import ConnectorConfig, MalformedResponse
from connectors.http import request
from connectors.partner import PartnerConnector
from connectors.wire import PartnerIdNumber, WireModel, parse_json
from schemas.evidence import BankAccountRecord, Evidence, HouseholdQuery, Record
from schemas.identity import mask_account


class BankConfig(ConnectorConfig):
    poll_initial_s: float = Field(default=0.01, gt=0, description="Wait before the second poll")
    poll_max_s: float = Field(default=0.5, gt=0, description="Longest wait between polls")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.poll_max_s < self.poll_initial_s:
            raise ValueError("poll_max_s must not be below poll_initial_s")
        return self


class _Account(WireModel):
    id_number: PartnerIdNumber
    bank: str = Field(min_length=1)
    account: str = Field(pattern=r"^[0-9A-Za-z]{4,40}$")
    balance: Decimal


class _Inquiry(WireModel):
    # It goes into the polling URL: only a plain token may, never a path.
    inquiry_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")
    state: Literal["PROCESSING", "DONE"]
    accounts: list[_Account] | None = None

    @model_validator(mode="after")
    def _done_has_accounts(self) -> Self:
        if self.state == "DONE" and self.accounts is None:
            raise ValueError("a DONE inquiry needs accounts")
        return self


class _Health(WireModel):
    state: Literal["UP"]


def poll_delays(initial_s: float, max_s: float) -> Iterator[float]:
    """0, then initial_s doubling up to max_s, forever: the caller's budget ends it."""
    yield 0.0
    delay = initial_s
    while True:
        yield delay
        delay = min(delay * 2, max_s)


class BankConnector(PartnerConnector[BankConfig]):
    name: ClassVar[str] = "bank"
    title: ClassVar[str] = "银行存款查询 bank balances"
    version: ClassVar[str] = "1.0.0"
    kinds: ClassVar[tuple[str, ...]] = ("bank_account",)
    Config: ClassVar[type[ConnectorConfig]] = BankConfig
    health_path: ClassVar[str] = "/health"
    health_model: ClassVar[type[WireModel]] = _Health

    async def ask(
        self, household: HouseholdQuery, config: BankConfig, client: httpx.AsyncClient
    ) -> Evidence:
        inquiry, records = await request(
            client,
            config,
            "POST",
            "/inquiries",
            _answer,
            json={"customers": [{"id_number": id_number} for id_number in household.id_numbers]},
        )
        delays = poll_delays(config.poll_initial_s, config.poll_max_s)
        while inquiry.state != "DONE":
            await asyncio.sleep(next(delays))
            polled, records = await request(
                client, config, "GET", f"/inquiries/{inquiry.inquiry_id}", _answer
            )
            if polled.inquiry_id != inquiry.inquiry_id:
                raise MalformedResponse("poll answered for another inquiry")
            inquiry = polled
        # Only accounts are listed: a DONE inquiry covers every customer it was asked about.
        return Evidence(records=records, answered=household.id_numbers)


def _answer(body: bytes) -> tuple[_Inquiry, list[Record]]:
    """The inquiry and, once it is DONE, its accounts as records."""
    inquiry = parse_json(body, _Inquiry)
    records: list[Record] = [
        BankAccountRecord(
            id_number=account.id_number,
            bank=account.bank,
            account=mask_account(account.account),
            balance=account.balance,
        )
        for account in inquiry.accounts or ()
    ]
    return inquiry, records
