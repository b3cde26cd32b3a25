"""`/v1/recipients`: the roll, stopping a benefit, renewing an authorization."""

from typing import Annotated

from fastapi import APIRouter, Query

from schemas import recipient as wire
from service.deps import ApproverDep, CaseworkerDep, CatalogDep, ReaderDep, SessionDep, SettingsDep
from service.errors import Conflict, InvalidRequest
from service.problem_docs import problems
from service.recipient.service import RecipientNotFound
from service.recipient.service import recipient as recipient_service
from service.routing import JSONRoute

router = APIRouter(prefix="/v1/recipients", tags=["recipients"], route_class=JSONRoute)


@router.get(
    "",
    response_model=wire.RecipientPage,
    summary="The roll of recipients in the caller's region, newest first",
)
async def list_recipients(
    session: SessionDep,
    principal: ReaderDep,
    where: Annotated[wire.RecipientFilter, Query()],
    settings: SettingsDep,
) -> wire.RecipientPage:
    """Households on (and off) the roll. `due_before=2027-12-31` lists those whose next
    re-check falls due by then; `status=left` those taken off, with the reason. Follow
    `next_cursor` until it is null."""
    return await recipient_service.page(session, principal, where, settings.today())


@router.get(
    "/{recipient_id}",
    response_model=wire.Recipient,
    responses=problems(RecipientNotFound()),
    summary="One recipient",
)
async def get_recipient(
    recipient_id: str, session: SessionDep, principal: ReaderDep, settings: SettingsDep
) -> wire.Recipient:
    return await recipient_service.read(session, principal, recipient_id, settings.today())


@router.post(
    "/{recipient_id}/stop",
    response_model=wire.Recipient,
    responses=problems(RecipientNotFound(), Conflict("The household is off the roll already")),
    summary="Take a household off the roll, with the reason",
)
async def stop_recipient(
    recipient_id: str,
    body: wire.RecipientStop,
    session: SessionDep,
    principal: ApproverDep,
    settings: SettingsDep,
) -> wire.Recipient:
    """An approver stops the benefit (a warning never does by itself). The household
    leaves the roll and is not re-checked again; a second stop is 409."""
    return await recipient_service.stop(session, principal, recipient_id, body, settings.today())


@router.post(
    "/{recipient_id}/consent",
    response_model=wire.Recipient,
    responses=problems(
        RecipientNotFound(),
        Conflict("The household is off the roll"),
        InvalidRequest.at(["body", "signed_on"], "cannot be in the future"),
    ),
    summary="Record a new signed authorization (授权书)",
)
async def renew_consent(
    recipient_id: str,
    body: wire.ConsentRenewal,
    session: SessionDep,
    principal: CaseworkerDep,
    catalog: CatalogDep,
    settings: SettingsDep,
) -> wire.Recipient:
    """A re-check held because the authorization had expired or was withdrawn
    (`needs_new_consent`) runs at the next re-check pass.

    A renewal is a newer authorization: signed no earlier than the one on record, and,
    after a withdrawal, on or after the day of the withdrawal (`consent.withdrawn_on`);
    the document of an authorization that was withdrawn or has expired is not accepted
    again (`422` naming `signed_on` or `document_id`)."""
    return await recipient_service.renew_consent(
        session, principal, recipient_id, body, catalog, settings.today()
    )
