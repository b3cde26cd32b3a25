"""银行存款查询 bank balances: asynchronous, as real bank inquiries are.

Submit one inquiry for the household, then poll it: once immediately, then backing off
from `poll_initial_s` doubling up to `poll_max_s`. `fetch` polls within its `timeout_s`;
the service calls `submit` instead, which polls for `park_after_s` at most and then parks
the inquiry (its id is the token), and `collect`s it later with one poll at a time, so a
bank that takes hours holds no run meanwhile. Account numbers are masked to their last 4
digits before they enter a record.
"""

import asyncio
import re
from collections.abc import Iterator
from typing import ClassVar, Literal, Self

import httpx
from pydantic import Field, model_validator

from connectors.base import ConnectorConfig, MalformedResponse, Parked, ParkingConfig
from connectors.http import request
from connectors.partner import PartnerConnector
from connectors.wire import PartnerIdNumber, WireAmount, WireModel, parse_json
from schemas.evidence import BankAccountRecord, Evidence, HouseholdQuery, Record
from schemas.identity import mask_account


class BankConfig(ParkingConfig):
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
    balance: WireAmount


INQUIRY_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class _Inquiry(WireModel):
    # It goes into the polling URL: only a plain token may, never a path.
    inquiry_id: str = Field(pattern=rf"^{INQUIRY_ID.pattern}$")
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
        answer = await self._inquire(household, config, client, park_at=None)
        assert isinstance(answer, Evidence)  # noqa: S101 - never parked without park_at
        return answer

    async def submit(
        self, household: HouseholdQuery, config: ConnectorConfig, client: httpx.AsyncClient
    ) -> Evidence | Parked:
        own = self.own_config(config)
        if not household.members:
            return Evidence(answered=[])
        # Park in time to leave the run half of its budget (the deadline may have cut it).
        wait_s = min(own.park_after_s or 0.0, own.timeout_s / 2)
        park_at = asyncio.get_running_loop().time() + wait_s
        return await self.within_budget(
            own, lambda: self._inquire(household, own, client, park_at=park_at)
        )

    async def collect(
        self,
        token: str,
        household: HouseholdQuery,
        config: ConnectorConfig,
        client: httpx.AsyncClient,
    ) -> Evidence | Parked:
        own = self.own_config(config)
        return await self.within_budget(own, lambda: self._poll(token, household, own, client))

    async def _inquire(
        self,
        household: HouseholdQuery,
        config: BankConfig,
        client: httpx.AsyncClient,
        *,
        park_at: float | None,
    ) -> Evidence | Parked:
        """Submit, then poll until DONE, or (with `park_at`) until a poll after the first
        would be later than `park_at` (then the inquiry is parked)."""
        inquiry, records = await request(
            client,
            config,
            "POST",
            "/inquiries",
            _answer,
            json={"customers": [{"id_number": id_number} for id_number in household.id_numbers]},
        )
        loop = asyncio.get_running_loop()
        delays = poll_delays(config.poll_initial_s, config.poll_max_s)
        while inquiry.state != "DONE":
            delay = next(delays)
            # Asked at least once after the submission, however long that took (a loaded
            # process must not park an inquiry the bank has answered already).
            if park_at is not None and delay > 0 and loop.time() + delay > park_at:
                return Parked(token=inquiry.inquiry_id, collect_after_s=config.collect_interval_s)
            if delay > 0:
                # The first poll goes at once: a yield here would queue it behind every
                # other source's answer arriving meanwhile (2–3 ms on a verification's
                # critical path, the bank's two calls being its longest).
                await asyncio.sleep(delay)
            polled, records = await request(
                client, config, "GET", f"/inquiries/{inquiry.inquiry_id}", _answer
            )
            if polled.inquiry_id != inquiry.inquiry_id:
                raise MalformedResponse("poll answered for another inquiry")
            inquiry = polled
        # Only accounts are listed: a DONE inquiry covers every customer it was asked about.
        return Evidence(records=records, answered=household.id_numbers)

    async def _poll(
        self, token: str, household: HouseholdQuery, config: BankConfig, client: httpx.AsyncClient
    ) -> Evidence | Parked:
        if not INQUIRY_ID.fullmatch(token):  # it goes into the URL: a plain token only
            raise MalformedResponse("the parked token is not an inquiry id")
        polled, records = await request(client, config, "GET", f"/inquiries/{token}", _answer)
        if polled.inquiry_id != token:
            raise MalformedResponse("poll answered for another inquiry")
        if polled.state != "DONE":
            return Parked(token=token, collect_after_s=config.collect_interval_s)
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
