"""`/v1/batches`: many households at once, read as a stream, one verification each."""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import ClientDisconnect

from connectors.registry import ConnectorRegistry
from schemas import batch as wire
from schemas.verification import VerificationCreate
from service.auth.principal import Principal
from service.batch.intake import Upload
from service.batch.service import batch as batch_service
from service.batch.service import check_reference, different_body
from service.batch.stream import BodyMalformed, JsonHouseholds, Raw, Spool, ndjson_lines
from service.config import Settings
from service.connector.wiring import source_plan
from service.db import WriteGate
from service.deps import (
    CaseworkerDep,
    CatalogDep,
    QueueDep,
    ReaderDep,
    RegistryDep,
    SessionDep,
    SettingsDep,
    WriteGateDep,
)
from service.errors import (
    BatchClosed,
    BatchNotFound,
    BatchTooLarge,
    Conflict,
    Forbidden,
    HeduiError,
    InvalidRequest,
    UnsupportedMediaType,
    check_idempotency_key,
)
from service.jobs.queue import RunQueue
from service.models import Batch
from service.policy.catalog import PolicyCatalog
from service.problem_docs import problems
from service.routing import JSONRoute

router = APIRouter(prefix="/v1/batches", tags=["batches"], route_class=JSONRoute)

QUERY_REFERENCE: list[str | int] = ["query", "reference"]
BODY_REFERENCE: list[str | int] = ["body", "reference"]
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")
_EXAMPLE: dict[str, Any] = VerificationCreate.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index,assignment]
_HOUSEHOLD_SCHEMA = {"$ref": "#/components/schemas/VerificationCreate"}
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The households. NDJSON, read as a stream: one household (the body "
        "of `POST /v1/verifications`) per line; `line` numbers count every line of the "
        'body, blank ones included. JSON: `{"reference": ..., "households": [...]}`, '
        "received whole and checked to its end before any household is stored (a fault "
        "anywhere is 422, nothing stored); `line` is the position in `households` (from "
        "1). At most HEDUI_MAX_BATCH_BYTES per request and HEDUI_MAX_BATCH_HOUSEHOLDS "
        "lines per batch.",
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one VerificationCreate per line"},
                "example": "\n".join(
                    json.dumps({**_EXAMPLE, "reference": f"recheck-{n}"}) for n in (1, 2)
                )
                + "\n",
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "reference": {"type": "string", "maxLength": 128},
                        "households": {"type": "array", "items": _HOUSEHOLD_SCHEMA},
                    },
                    "required": ["households"],
                },
                "example": {
                    "reference": "recheck-2026-h2",
                    "households": [{**_EXAMPLE, "reference": "recheck-1"}],
                },
            },
        },
    }
}
IDEMPOTENCY_KEY = Header(
    alias="Idempotency-Key",
    max_length=255,
    description="Names the batch for its creator: a repeat with the same key continues "
    "the batch that key made (same `id`, `Idempotent-Replayed: true`); lines it has "
    "received already are skipped, so an interrupted upload can simply be sent again. A "
    "repeat must resend that upload: the same reference and, unchanged, the lines the "
    "batch received under the key, before any new ones; otherwise 422. At most 255 "
    "characters of printable ASCII, not blank.",
)
NOT_BATCH_MEDIA_TYPE = "Send households as application/x-ndjson (one per line) or application/json"
BATCH_RESPONSES: dict[int | str, dict[str, Any]] = problems(
    BatchTooLarge(100_000, 100_000, batch_id="9a2c4e6f-1b3d-4f5a-8c7e-0d2f4a6b8c1e"),
    BatchTooLarge(100_000, 0, sent=100_001),
    different_body(),
    UnsupportedMediaType(NOT_BATCH_MEDIA_TYPE),
)
"""Body over HEDUI_MAX_BATCH_BYTES (413 `too-large`), or the batch over
HEDUI_MAX_BATCH_HOUSEHOLDS lines (413 `batch-too-large`: NDJSON, the lines before the limit
are stored; JSON, nothing is)."""


@dataclass(frozen=True, slots=True)
class _Body:
    lines: AsyncIterator[tuple[int, Raw]]
    fields: dict[str, Any]
    """The JSON shape's members other than `households` (none for NDJSON)."""


@asynccontextmanager
async def _body(request: Request, max_line_bytes: int, max_households: int) -> AsyncIterator[_Body]:
    """The body's households. NDJSON is read as it arrives, line by line. A JSON body is
    one document, refused whole for a fault anywhere in it (trailing text, a member named
    twice, a bad reference after the households): it is kept as it arrives and its
    envelope checked to the end before a single household is handed on."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in NDJSON_TYPES:
        yield _Body(ndjson_lines(request.stream(), max_line_bytes=max_line_bytes), {})
        return
    if media_type != "application/json":
        raise UnsupportedMediaType(NOT_BATCH_MEDIA_TYPE)
    reader = JsonHouseholds(max_line_bytes=max_line_bytes)
    with Spool() as spool:
        try:
            await reader.check(spool.keep(request.stream()))
        except BodyMalformed as error:
            loc: list[str | int] = (
                ["body"] if error.line is None else ["body", "households", error.line - 1]
            )
            raise InvalidRequest.at(loc, error.message) from error
        except ClientDisconnect as error:
            raise _Gone() from error
        if reader.count > max_households:
            # Known before anything is stored: refused whole, like any other fault in it.
            raise BatchTooLarge(max_households, 0, sent=reader.count)
        yield _Body(reader.households(spool.chunks()), dict(reader.fields))


async def _receive(upload: Upload, lines: AsyncIterator[tuple[int, Raw]]) -> None:
    try:
        await upload.read(lines)
        await upload.flush()
    except BatchTooLarge as error:
        batch = upload.batch
        if batch is None or not upload._received():
            raise
        # Full: no line more can join it. Name it, so that the caller can close it (and
        # hear `batch.completed`) and follow what it holds.
        raise BatchTooLarge(
            error.limit,
            error.stored_through,
            batch_id=batch.id,
        ) from error
    except ClientDisconnect as error:
        raise _Gone() from error


class _Gone(HeduiError):
    """The client went away mid-upload: what was committed stays; nobody hears an answer."""

    status, title, slug = 400, "Client disconnected", "validation"


def _upload(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    catalog: PolicyCatalog,
    registry: ConnectorRegistry,
    queue: RunQueue,
    write_gate: WriteGate,
    batch: Batch | None,
    make_batch: Callable[[], Batch],
    first_line: int = 1,
    *,
    keyed: bool = False,
) -> Upload:
    return Upload(
        session=session,
        principal=principal,
        catalog=catalog,
        sources=source_plan(registry),
        queue=queue,
        write_gate=write_gate,
        today=settings.today(),
        chunk=settings.batch_chunk,
        max_households=settings.max_batch_households,
        max_line_bytes=settings.max_body_bytes,
        batch=batch,
        make_batch=make_batch,
        first_line=first_line,
        keyed=keyed,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=wire.BatchAccepted,
    responses={
        201: {"description": "Created; follow `Location`"},
        200: {"model": wire.BatchAccepted, "description": "An `Idempotency-Key` repeat"},
        **BATCH_RESPONSES,
    },
    openapi_extra=UPLOAD_BODY,
    summary="Submit many households at once (JSON or NDJSON, streamed)",
)
async def create_batch(
    request: Request,
    response: Response,
    principal: CaseworkerDep,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    registry: RegistryDep,
    queue: QueueDep,
    write_gate: WriteGateDep,
    reference: Annotated[
        str | None,
        Query(
            max_length=128,
            description="The batch's own reference (NDJSON; JSON may carry it in the body)",
        ),
    ] = None,
    close: Annotated[
        bool,
        Query(description="false: keep the batch open for `POST /v1/batches/{id}/households`"),
    ] = True,
    idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY] = None,
) -> wire.BatchAccepted:
    """Each valid household becomes one verification of the batch, stored with its job in
    chunks as the body arrives (JSON: once the whole body has arrived and is sound); they
    run as workers have room. A refused line stores nothing and is listed in `GET
    /v1/batches/{id}/errors` with its line number and fields; the other lines proceed.
    Households must be in the key's region."""
    check_idempotency_key(idempotency_key)
    query_reference = check_reference(reference, QUERY_REFERENCE)
    async with _body(request, settings.max_body_bytes, settings.max_batch_households) as body:
        # Checked before anything is stored, wherever in the body it stands.
        body_reference = check_reference(body.fields.get("reference"), BODY_REFERENCE)
        if None not in (query_reference, body_reference) and query_reference != body_reference:
            raise InvalidRequest.at(BODY_REFERENCE, "differs from the query's reference")
        named = query_reference or body_reference
        found = await batch_service.find(session, principal, idempotency_key, reference=named)
        upload = _upload(
            session,
            principal,
            settings,
            catalog,
            registry,
            queue,
            write_gate,
            found,
            lambda: batch_service.new(principal, reference=named, idempotency_key=idempotency_key),
            keyed=idempotency_key is not None,
        )
        await _receive(upload, body.lines)
    batch = await upload.ensure_batch()
    if close:
        batch = await batch_service.close(session, principal, batch.id)
    if found is not None:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/batches/{batch.id}"
    view = await batch_service.view(session, batch)
    return wire.BatchAccepted(**view.model_dump(), upload=upload.summary())


FIRST_LINE = Query(
    ge=1,
    description="The line number of this body's first line in the batch (default: the "
    "next after `lines_received`). Lines the batch has already received are skipped; a "
    "gap is 422.",
)


@router.post(
    "/{batch_id}/households",
    response_model=wire.BatchAccepted,
    responses={
        **BATCH_RESPONSES,
        **problems(
            BatchNotFound(),
            Forbidden("Only the key that created a batch adds households to it"),
            BatchClosed("closed"),
        ),
    },
    openapi_extra=UPLOAD_BODY,
    summary="Add households to an open batch (resumable: lines are numbered)",
)
async def add_households(
    batch_id: str,
    request: Request,
    principal: CaseworkerDep,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    registry: RegistryDep,
    queue: QueueDep,
    write_gate: WriteGateDep,
    first_line: Annotated[int | None, FIRST_LINE] = None,
) -> wire.BatchAccepted:
    """The way `hedui batch submit` uploads: a piece of the file per request, each line
    numbered, so that a client that stopped half way resumes after `lines_received`."""
    batch = await batch_service.get(session, principal, batch_id)
    if batch.created_by != principal.key_id:
        raise Forbidden("Only the key that created a batch adds households to it")
    if batch.status != wire.BatchStatus.open.value:
        raise BatchClosed(batch.status)
    async with _body(request, settings.max_body_bytes, settings.max_batch_households) as body:
        if "reference" in body.fields and body.fields["reference"] != batch.reference:
            # The batch's reference was given when it was made; a body naming another (or
            # one the batch has not got) would be silently ignored.
            raise InvalidRequest.at(
                BODY_REFERENCE, "differs from the batch's own reference (leave it out)"
            )
        upload = _upload(
            session,
            principal,
            settings,
            catalog,
            registry,
            queue,
            write_gate,
            batch,
            lambda: batch,
            first_line=first_line or batch.lines_received + 1,
        )
        await _receive(upload, body.lines)
    view = await batch_service.view(session, batch)
    return wire.BatchAccepted(**view.model_dump(), upload=upload.summary())


@router.post(
    "/{batch_id}/close",
    response_model=wire.Batch,
    responses=problems(BatchNotFound(), BatchClosed("cancelled")),
    summary="No more households: the batch's verifications run to the end",
)
async def close_batch(batch_id: str, principal: CaseworkerDep, session: SessionDep) -> wire.Batch:
    batch = await batch_service.close(session, principal, batch_id)
    return await batch_service.view(session, batch)


@router.post(
    "/{batch_id}/cancel",
    response_model=wire.Batch,
    responses=problems(
        BatchNotFound(),
        Conflict(
            "The batch has finished: every verification in it has ended, so nothing is "
            "left to cancel"
        ),
    ),
    summary="Cancel a batch: verifications not yet started become `cancelled`",
)
async def cancel_batch(batch_id: str, principal: CaseworkerDep, session: SessionDep) -> wire.Batch:
    """Verifications still `queued` (no partner asked yet) become `cancelled` and never
    run; those already `running` finish and keep their reports. The batch takes no more
    households. A re-check cancelled so is due again: the next pass starts it in the day's
    next re-check batch. Cancelling again changes nothing; a batch that has finished (every
    verification ended, `completed_at` set) is `409`."""
    batch, _ = await batch_service.cancel(session, principal, batch_id)
    return await batch_service.view(session, batch)


@router.get(
    "",
    response_model=wire.BatchPage,
    summary="Batches of the caller's region, newest first",
)
async def list_batches(
    session: SessionDep, principal: ReaderDep, where: Annotated[wire.BatchFilter, Query()]
) -> wire.BatchPage:
    return await batch_service.page(session, principal, where)


@router.get(
    "/{batch_id}",
    response_model=wire.Batch,
    responses=problems(BatchNotFound()),
    summary="A batch: counts per status and recommendation, progress and ETA",
)
async def get_batch(batch_id: str, session: SessionDep, principal: ReaderDep) -> wire.Batch:
    """Counts come from one grouped query over an index, however large the batch."""
    return await batch_service.read(session, principal, batch_id)


@router.get(
    "/{batch_id}/errors",
    response_model=wire.BatchErrorPage,
    responses=problems(BatchNotFound()),
    summary="The batch's refused lines, by line number",
)
async def batch_errors(
    batch_id: str,
    session: SessionDep,
    principal: ReaderDep,
    where: Annotated[wire.LinePage, Query()],
) -> wire.BatchErrorPage:
    return await batch_service.errors(session, principal, batch_id, where)


@router.get(
    "/{batch_id}/verifications",
    response_model=wire.BatchVerificationPage,
    responses=problems(BatchNotFound()),
    summary="The batch's verifications by line, filterable by status and recommendation",
)
async def batch_verifications(
    batch_id: str,
    session: SessionDep,
    principal: ReaderDep,
    where: Annotated[wire.BatchVerificationFilter, Query()],
) -> wire.BatchVerificationPage:
    return await batch_service.verifications(session, principal, batch_id, where)
