"""社保 pensions: JSON batches of at most 50 people; larger households go in concurrent chunks."""

from functools import partial
from typing import ClassVar, Literal, Self

import httpx
from pydantic import Field, StrictBool, StrictInt, model_validator

from connectors.base import ConnectorConfig, MalformedResponse
from connectors.http import map_concurrently, request
from connectors.partner import PartnerConnector
from connectors.wire import WireAmount, WireModel, parse_json
from schemas.evidence import Evidence, HouseholdQuery, PensionRecord

BATCH_LIMIT = 50
"""The partner answers 400 to larger batches."""


class PensionsConfig(ConnectorConfig):
    batch_size: int = Field(default=BATCH_LIMIT, ge=1, le=BATCH_LIMIT)


class _Result(WireModel):
    seq: StrictInt
    found: StrictBool
    status: Literal["receiving", "contributing", "none"] | None = None
    monthly_amount: WireAmount | None = None

    @model_validator(mode="after")
    def _found_has_details(self) -> Self:
        if self.found and (self.status is None or self.monthly_amount is None):
            raise ValueError("a found person needs status and monthly_amount")
        # "Not found" with a pension's details contradicts itself: not "no record".
        if not self.found and (self.status is not None or self.monthly_amount is not None):
            raise ValueError("a person not found has no status or monthly_amount")
        return self


class _Batch(WireModel):
    code: Literal[0]
    results: list[_Result]


class _Health(WireModel):
    code: Literal[0]


class PensionsConnector(PartnerConnector[PensionsConfig]):
    name: ClassVar[str] = "pensions"
    title: ClassVar[str] = "社保 pensions"
    version: ClassVar[str] = "1.0.0"
    kinds: ClassVar[tuple[str, ...]] = ("pension",)
    Config: ClassVar[type[ConnectorConfig]] = PensionsConfig
    health_path: ClassVar[str] = "/health"
    health_model: ClassVar[type[WireModel]] = _Health

    async def ask(
        self, household: HouseholdQuery, config: PensionsConfig, client: httpx.AsyncClient
    ) -> Evidence:
        ids = household.id_numbers
        chunks = [
            ids[start : start + config.batch_size]
            for start in range(0, len(ids), config.batch_size)
        ]
        answers = await map_concurrently(partial(_ask, client, config), chunks)
        return Evidence(
            records=[record for answer in answers for record in answer.records],
            answered=[id_number for answer in answers for id_number in answer.answered],
        )


async def _ask(client: httpx.AsyncClient, config: PensionsConfig, ids: list[str]) -> Evidence:
    # seq, not the ID number, ties an answer to its request: it is all the partner echoes.
    by_seq = dict(enumerate(ids, start=1))
    return await request(
        client,
        config,
        "POST",
        "/batch",
        partial(_evidence, by_seq),
        json={"requests": [{"seq": seq, "sfzh": id_number} for seq, id_number in by_seq.items()]},
    )


def _evidence(by_seq: dict[int, str], body: bytes) -> Evidence:
    batch = parse_json(body, _Batch)
    records: list[PensionRecord] = []
    for result in batch.results:
        if result.seq not in by_seq:
            raise MalformedResponse("result for a seq that was not asked for")
        # A missing or repeated seq is left to the contract check: `answered` says what came.
        # `_found_has_details` guarantees both values whenever `found` is true.
        if result.found and result.status is not None and result.monthly_amount is not None:
            records.append(
                PensionRecord(
                    id_number=by_seq[result.seq],
                    status=result.status,
                    monthly_amount=result.monthly_amount,
                )
            )
    return Evidence(records=records, answered=[by_seq[result.seq] for result in batch.results])
