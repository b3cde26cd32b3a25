"""`/v1/verifications`: intake, reading, listing."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request, Response, status

from schemas import verification as wire
from service.admission import AdmittedCaseworkerDep
from service.audit.recorder import change_event, recorded_with_change
from service.auth.scope import place
from service.bulk import Rows
from service.connector.wiring import source_plan
from service.db import commit_begun
from service.deps import (
    CaseworkerDep,
    CompletionsDep,
    QueueDep,
    ReaderDep,
    SessionDep,
    SettingsDep,
)
from service.errors import (
    InvalidRequest,
    OutsideRegion,
    Overloaded,
    RateLimited,
    VerificationNotFound,
    VerificationWithdrawn,
    check_idempotency_key,
)
from service.jobs.completion import Completions
from service.jobs.queue import RunQueue
from service.models import Verification
from service.problem_docs import problems
from service.routing import JSONRoute
from service.verification.intake import submit
from service.verification.service import finished_view
from service.verification.service import verification as verification_service
from service.verification.withdrawal import withdraw

router = APIRouter(prefix="/v1/verifications", tags=["verifications"], route_class=JSONRoute)

FINISHED = (
    wire.VerificationStatus.completed,
    wire.VerificationStatus.failed,
    wire.VerificationStatus.withdrawn,
)


def wait_seconds(prefer: str | None, cap: float) -> float:
    """The `wait` preference of a `Prefer` header (RFC 7240: `wait=N`, whole seconds),
    capped; 0 when there is none. Preferences are comma-separated, each with its own
    `;`-parameters: `foo;wait=5` is a parameter of `foo`, not a wait. A wait whose value is
    not whole seconds (`1.5`, `1e3`) is not understood, and so ignored, as the RFC says."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] == '"':
            value = value[1:-1]  # a quoted-string word
        return min(float(value), cap) if value.isascii() and value.isdigit() else 0.0
    return 0.0


LOCATION = {"description": "`/v1/verifications/{id}`", "schema": {"type": "string"}}
REPLAYED = {
    "description": "`true` when an earlier request with the same `Idempotency-Key` made this "
    "verification",
    "schema": {"type": "string", "enum": ["true"]},
}
APPLIED = {
    "description": "`wait=N`: the wait honoured (N is capped by the server)",
    "schema": {"type": "string"},
}
IDEMPOTENCY_KEY = Header(
    alias="Idempotency-Key",
    max_length=255,
    description="Makes a retry safe. A repeat by the same API key with the same key and the "
    "same body answers with the verification the first request made (same `id`, header "
    "`Idempotent-Replayed: true`) and asks no partner again; the same key with a different "
    "body is 422. At most 255 characters of printable ASCII, not blank.",
)
PREFER = Header(
    alias="Prefer",
    description="`wait=N`: hold the answer up to N seconds (capped by the server). If the "
    "verification finishes in time the answer is `200` with its final state, otherwise "
    "`202` as without the header; `Preference-Applied` says which wait was honoured.",
    examples=["wait=10"],
)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=wire.VerificationAccepted,
    responses={
        202: {
            "description": "Accepted; follow `Location`",
            "headers": {
                "Location": LOCATION,
                "Idempotent-Replayed": REPLAYED,
                "Preference-Applied": APPLIED,
            },
        },
        200: {
            "model": wire.Verification,
            "description": "Finished within `Prefer: wait=N`: the final state",
            "headers": {
                "Location": LOCATION,
                "Idempotent-Replayed": REPLAYED,
                "Preference-Applied": APPLIED,
            },
        },
        **problems(
            OutsideRegion(),
            InvalidRequest.at(["body", "consent", "signed_on"], "cannot be in the future"),
            RateLimited(
                42, {"RateLimit-Policy": '"default";q=60;w=60', "RateLimit": '"default";r=0;t=42'}
            ),
            Overloaded(Overloaded.RUNNING),
            Overloaded(Overloaded.QUEUED),
        ),
    },
    summary="Submit a household for verification",
)
async def create_verification(
    body: wire.VerificationCreate,
    request: Request,
    response: Response,
    admitted: AdmittedCaseworkerDep,
    session: SessionDep,
    idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY] = None,
    prefer: Annotated[str | None, PREFER] = None,
) -> wire.VerificationAccepted | Response:
    """Accepts the household and fans out to every partner source in the background.

    Answers `202` at once, or, with `Prefer: wait=N`, `200` with the final state when the
    verification finishes within N seconds. With `Idempotency-Key`, a retry of the same
    request returns the first verification instead of making a second one.
    """
    check_idempotency_key(idempotency_key)
    parts = admitted.parts
    wait_s = wait_seconds(prefer, parts.settings.max_wait_s)

    def audited(verification: Verification) -> list[Rows]:
        # In the commit that stores it: the request may wait for its run long after.
        return change_event(
            request,
            object_id=verification.id,
            object_region=place(verification.region_code, verification.township_code),
        )

    verification, created = await submit(
        session,
        principal=admitted.principal,
        body=body,
        catalog=parts.catalog,
        sources=source_plan(parts.registry),
        queue=parts.queue,
        write_gate=parts.write_gate,
        today=parts.settings.today(),
        idempotency_key=idempotency_key,
        with_change=audited,
    )
    admitted.seat.release()  # its run counts as in flight from here (or waits in the queue)
    if created:
        recorded_with_change(request)
    else:
        response.headers["Idempotent-Replayed"] = "true"

    response.headers["Location"] = f"/v1/verifications/{verification.id}"
    verification_status = wire.VerificationStatus(verification.status)
    if wait_s > 0:
        response.headers["Preference-Applied"] = f"wait={int(wait_s)}"
        ended = None
        if verification_status not in FINISHED:
            # Nothing of the database is held while waiting: a crowd of waiting requests
            # must not starve the pool the runs (and /healthz) need.
            await commit_begun(session)
            ended = await parts.completions.wait(verification.id, wait_s)
        if ended is not None and ended.result is not None and created:
            current = finished_view(verification, ended.result)
        else:
            current = await verification_service.read(session, admitted.principal, verification.id)
        if current.status in FINISHED:
            return Response(
                current.model_dump_json(),
                status_code=200,
                media_type="application/json",
                headers=dict(response.headers),
            )
        verification_status = current.status
    return wire.VerificationAccepted(
        id=verification.id,
        reference=verification.reference,
        status=verification_status,
        created_at=verification.created_at,
    )


@router.get(
    "",
    response_model=wire.VerificationPage,
    summary="List verifications in the caller's region, newest first",
)
async def list_verifications(
    session: SessionDep,
    principal: ReaderDep,
    where: Annotated[wire.VerificationFilter, Query()],
) -> wire.VerificationPage:
    """Filters combine with AND; `region_code` narrows within the caller's own region.
    Follow `next_cursor` until it is null."""
    return await verification_service.page(session, principal, where)


@router.get(
    "/{verification_id}",
    response_model=wire.Verification,
    responses=problems(VerificationNotFound()),
    summary="A verification and the state of each source",
)
async def get_verification(
    verification_id: str, session: SessionDep, principal: ReaderDep
) -> wire.Verification:
    return await verification_service.read(session, principal, verification_id)


@router.post(
    "/{verification_id}/withdraw",
    response_model=wire.Verification,
    responses=problems(
        VerificationNotFound(), VerificationWithdrawn(VerificationWithdrawn.ALREADY)
    ),
    summary="Withdraw a verification: the household's consent, or the application",
)
async def withdraw_verification(
    verification_id: str,
    session: SessionDep,
    principal: CaseworkerDep,
    queue: QueueDep,
    completions: CompletionsDep,
    background: BackgroundTasks,
    settings: SettingsDep,
    body: wire.WithdrawalCreate | None = None,
) -> wire.Verification:
    """The verification becomes `withdrawn`, whatever state it was in; the answer is its
    new state.

    - Queued or running: no partner is asked for it any more. Calls in flight in this
      process are cancelled; a run in another process stops at the first answer it gets
      after this, at the latest at its next heartbeat (a third of its lease); a queued
      job, or a parked source's collect, finds it withdrawn and does nothing. A partner
      answer that still arrives is not stored, and no report is made.
    - Completed (consent withdrawn after the report): the report and its decision stay
      readable as stored, for accountability; it can no longer be decided or re-scored.
    - Either way its raw partner records are purged at once, and `verification.withdrawn`
      goes to webhooks.

    Withdrawing a withdrawn verification is `409` (`/problems/verification-withdrawn`)."""
    withdrawn = await withdraw(
        session, principal, verification_id, body or wire.WithdrawalCreate(), settings.today()
    )
    # After the commit (background tasks run once the answer is sent): a failed commit
    # leaves the run going, as the verification it runs.
    background.add_task(_stopped, queue, completions, verification_id)
    return withdrawn


def _stopped(queue: RunQueue, completions: Completions, verification_id: str) -> None:
    queue.stop(verification_id)
    completions.finished(verification_id)
