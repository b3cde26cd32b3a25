"""The roll: an approved decision puts a household on it, a re-check's decision keeps it
there (with the new report's benefit) or takes it off, and an approver may stop it."""

from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import recipient as wire
from schemas.identity import mask_id_number, mask_name
from schemas.policy import ResolvedPolicy
from schemas.verification import Area, DecisionCreate, Member, Program
from service.auth.principal import Principal
from service.auth.scope import narrow
from service.errors import (
    AlreadyOnTheRoll,
    Conflict,
    InvalidRequest,
    NotFound,
    RecheckSuperseded,
    RecipientLeft,
    StaleChange,
)
from service.models import Decision, Recheck, Recipient, Report, Verification
from service.models.base import new_id, utcnow
from service.pagination import decode_cursor, listing, next_cursor
from service.policy.catalog import PolicyCatalog
from service.recipient.calendar import add_months, authorization_expired, next_after
from service.recipient.repository import RecipientRepository
from service.verification.repository import VerificationRepository
from service.verification.service import refuse_member_names
from service.warning.repository import WarningRepository

ROLL_PROGRAMS = frozenset({"dibao", "tekun"})
"""Programs paid every month, so re-checked; linshi is a one-off and has no roll."""


class RecipientNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such recipient")


def default_class(program: str) -> wire.RecheckClass:
    return wire.RecheckClass.regular if program == "tekun" else wire.RecheckClass.other


def monthly_benefit(report: Report | None) -> Decimal | None:
    benefit: dict[str, Any] | None = (report.body or {}).get("benefit") if report else None
    return Decimal(str(benefit["monthly_amount"])) if benefit else None


def granted_benefit(
    verification: Verification, report: Report | None, body: DecisionCreate
) -> Decimal | None:
    """The monthly benefit an approval grants: the report's when it computed one, else
    the approver's (`monthly_benefit`), which a roll program's approval must then give.
    None for what is not an approval onto a roll. InvalidRequest naming the field when
    the decision and the report disagree."""
    if body.decision != "approve":
        return None
    computed = monthly_benefit(report)
    given = body.monthly_benefit
    if verification.program not in ROLL_PROGRAMS:
        if body.recheck_class is not None:
            raise InvalidRequest.at(
                ["body", "recheck_class"],
                f"{verification.program} is paid once and puts nobody on the roll: "
                "nobody is re-checked",
            )
        if given is not None:
            raise InvalidRequest.at(
                ["body", "monthly_benefit"],
                f"{verification.program} is paid once and puts nobody on the roll: "
                "an approval grants no monthly benefit (its one-off amount is one_off_amount)",
            )
        return None
    if computed is not None:
        if given is not None and given != computed:
            raise InvalidRequest.at(
                ["body", "monthly_benefit"],
                "differs from the monthly benefit the report computed: an approval grants "
                "the report's (leave this out)",
            )
        return computed
    if given is None:
        recommendation = (report.body or {}).get("recommendation") if report else None
        raise InvalidRequest.at(
            ["body", "monthly_benefit"],
            f"the report computed no benefit (its recommendation is {recommendation}): "
            "an approval states the monthly benefit granted, in yuan",
        )
    return given


async def _resolve_warnings_of_leaver(
    session: AsyncSession, by: tuple[str, str], recipient_id: str, how: str
) -> None:
    """A household off the roll leaves nothing to act on: its warnings still open or
    acknowledged are resolved with it, by whoever took it off, and say so (they would
    otherwise count in every summary's open and high figures for ever). `by`: the key id
    and name of whoever did."""
    await WarningRepository.from_session(session).resolve_of_recipient(
        recipient_id,
        values={
            "resolved_by": by[0],
            "resolved_by_name": by[1],
            "resolved_at": utcnow(),
            "resolved_note": f"the household left the roll ({how})",
        },
    )


def policy_for(
    catalog: PolicyCatalog, household: Verification | Recipient, day: date
) -> ResolvedPolicy | None:
    """The policy in force on `day` for the household's region, program and area."""
    return catalog.resolve(
        household.region_code, cast(Program, household.program), cast(Area, household.area), day
    )


def _schedule(
    catalog: PolicyCatalog,
    verification: Verification,
    recheck_class: wire.RecheckClass,
    today: date,
) -> tuple[int, date | None]:
    """For a household approved `today`: months to its first re-check in `recheck_class`,
    and when the verification's authorization ends (None: the region sets no limit)."""
    resolved = policy_for(catalog, verification, today) or policy_for(
        catalog, verification, verification.as_of
    )
    months = resolved.parameters.recheck_months(recheck_class) if resolved else 12
    consent_months = resolved.parameters.consent_valid_months if resolved else None
    expires_on = (
        add_months(verification.consent_signed_on, consent_months) if consent_months else None
    )
    return months, expires_on


def consent_problem(
    recipient: Recipient, document_id: str, signed_on: date, today: date
) -> tuple[str, str] | None:
    """Why an authorization cannot replace the recipient's on record (the field, `signed_on`
    or `document_id`, and why), or None: it must be signed no earlier than the one on
    record, after a withdrawal on or after its day, and be a document of its own once the
    one on record was withdrawn or expired."""
    if recipient.consent_signed_on is not None and signed_on < recipient.consent_signed_on:
        return (
            "signed_on",
            f"is before the authorization on record (signed {recipient.consent_signed_on}): "
            "a renewal is a newer one",
        )
    withdrawn_on = recipient.consent_withdrawn_on
    if withdrawn_on is not None and signed_on < withdrawn_on:
        return (
            "signed_on",
            f"is before the authorization on record was withdrawn ({withdrawn_on}): a "
            "withdrawal revokes what was signed before it",
        )
    ended = withdrawn_on is not None or authorization_expired(recipient.consent_expires_on, today)
    if ended and document_id == recipient.consent_document_id:
        how = "withdrawn" if withdrawn_on is not None else "expired"
        return (
            "document_id",
            f"is the authorization on record, which was {how}: a renewal is a new "
            "authorization with a document of its own",
        )
    return None


class RecipientService:
    async def record_decision(
        self,
        session: AsyncSession,
        *,
        principal: Principal,
        verification: Verification,
        decision: Decision,
        body: DecisionCreate,
        report: Report | None,
        catalog: PolicyCatalog,
        today: date,
    ) -> Recipient | None:
        """What a decision does to the roll (the caller's transaction; nothing commits).

        A first approval puts the household on the roll. On a re-check's verification, an
        approval confirms the recipient with the new report and benefit, a rejection takes
        it off the roll with the reason; `return` sends the re-check back: its recipient
        (under review still, if it was) is due again on the date it was due, and the next
        pass starts the re-check again, whose report the approver then decides on. (A
        household on the roll is re-checked, not verified anew: a new verification of it
        cannot be approved, `AlreadyOnTheRoll`, unless the approval names it as a
        household whose members changed: `body.recipient_id`, `_change_household`.)"""
        repository = RecipientRepository.from_session(session)
        found = await repository.recheck_of(verification.id)
        if found is not None and body.recipient_id is not None:
            raise InvalidRequest.at(
                ["body", "recipient_id"],
                "this is a re-check of its recipient's household already: leave it out",
            )
        if body.recipient_id is not None:
            return await self._change_household(
                repository,
                principal=principal,
                verification=verification,
                body=body,
                report=report,
                catalog=catalog,
                today=today,
            )
        if found is not None:
            recheck, recipient = found
            return await self._decide_recheck(
                session,
                repository,
                recheck,
                recipient,
                verification=verification,
                decision=decision,
                body=body,
                report=report,
                catalog=catalog,
                today=today,
            )
        if body.decision != "approve" or verification.program not in ROLL_PROGRAMS:
            return None
        await repository.hold_the_roll()
        # On either roll: 特困 and 低保 exclude each other, and a person is paid once.
        paid = await repository.member_on_the_roll(verification.id, ROLL_PROGRAMS)
        if paid is not None:
            member, on_the_roll = paid
            raise AlreadyOnTheRoll(
                mask_id_number(member.id_number),
                on_the_roll.program,
                # Said of a household of the verification's own county and program only.
                under_review=on_the_roll.region_code == verification.region_code
                and on_the_roll.program == verification.program
                and on_the_roll.status == wire.RecipientStatus.under_review.value,
            )
        recheck_class = wire.RecheckClass(body.recheck_class or default_class(verification.program))
        months, consent_expires_on = _schedule(catalog, verification, recheck_class, today)
        recipient = Recipient(
            id=new_id(),
            reference=verification.reference,
            program=verification.program,
            area=verification.area,
            region_code=verification.region_code,
            township_code=verification.township_code,
            recheck_class=recheck_class.value,
            status=wire.RecipientStatus.active.value,
            monthly_benefit=granted_benefit(verification, report, body),
            origin_verification_id=verification.id,
            approved_verification_id=verification.id,
            approved_on=today,
            next_recheck_on=add_months(today, months),
            recheck_day=today.day,
            consent_document_id=verification.consent_document_id,
            consent_signed_on=verification.consent_signed_on,
            consent_expires_on=consent_expires_on,
        )
        await repository.add(recipient)
        return recipient

    async def household_names(
        self, session: AsyncSession, principal: Principal, recipient_id: str
    ) -> list[str]:
        """The names of the members on the roll with the recipient (none if the caller
        cannot see it): a change's reason is written about them ("... died")."""
        recipient = await RecipientRepository.from_session(session).get(
            recipient_id, scope=principal
        )
        if recipient is None:
            return []
        return await VerificationRepository.from_session(session).member_names(
            recipient.approved_verification_id
        )

    async def _decide_recheck(
        self,
        session: AsyncSession,
        repository: RecipientRepository,
        recheck: Recheck,
        recipient: Recipient,
        *,
        verification: Verification,
        decision: Decision,
        body: DecisionCreate,
        report: Report | None,
        catalog: PolicyCatalog,
        today: date,
    ) -> Recipient:
        """A decision on a re-check's verification (see `record_decision`)."""
        if recipient.status == wire.RecipientStatus.left.value:
            # Stopped (or rejected) since the re-check began: an approval would say the
            # household is paid while the roll says it is not.
            if body.decision == "approve":
                raise RecipientLeft(recipient.left_on)
            return recipient
        now = utcnow()
        if body.decision == "return":
            # Superseded, it is not started again: the later re-check's report decides.
            if not await repository.later_recheck_started(
                recipient.id, recheck.due_on
            ) and not await repository.household_changed_since(
                recipient.id, recheck.started_at or recheck.created_at
            ):
                await repository.return_recheck(recheck, now)
            return recipient
        # Only a later report supersedes this one: a later re-check that failed, or
        # waits for a new authorization, has nothing for the approver to decide instead.
        if await repository.later_recheck_started(recipient.id, recheck.due_on, reported=True):
            raise RecheckSuperseded()
        if await repository.household_changed_since(
            recipient.id, recheck.started_at or recheck.created_at
        ):
            # The re-check compared the household approved before; the roll has the
            # new one, whose report an approver has decided on since.
            raise RecheckSuperseded(household_changed=True)
        if body.decision == "approve":
            changes: dict[str, Any] = {}
            if body.recheck_class and body.recheck_class != recipient.recheck_class:
                # Another class, another interval: the schedule from this re-check's due
                # date on, as the scheduler set the one it replaces.
                resolved = policy_for(catalog, recipient, today)
                months = (
                    resolved.parameters.recheck_months(wire.RecheckClass(body.recheck_class))
                    if resolved
                    else 12
                )
                changes["next_recheck_on"] = next_after(
                    recheck.due_on, months, today, recipient.recheck_day
                )
            await repository.update(
                recipient.id,
                status=wire.RecipientStatus.active.value,
                approved_verification_id=verification.id,
                approved_on=today,
                monthly_benefit=granted_benefit(verification, report, body),
                recheck_class=body.recheck_class or recipient.recheck_class,
                updated_at=now,
                **changes,
            )
        elif body.decision == "reject":
            await repository.update(
                recipient.id,
                status=wire.RecipientStatus.left.value,
                left_on=today,
                left_reason=f"rejected at the re-check due {recheck.due_on}: {body.reason}",
                updated_at=now,
            )
            decider = (decision.decided_by, decision.decided_by_name or "")
            await _resolve_warnings_of_leaver(session, decider, recipient.id, "rejected")
        return recipient

    async def _change_household(
        self,
        repository: RecipientRepository,
        *,
        principal: Principal,
        verification: Verification,
        body: DecisionCreate,
        report: Report | None,
        catalog: PolicyCatalog,
        today: date,
    ) -> Recipient:
        """An approval of a household on the roll whose members changed (a birth, a death,
        a marriage, a member moving out): the verification becomes the recipient's
        approved one, as a first approval's would, in place of the household approved
        before. The recipient is the same one (its id, its origin, its history); its
        members, benefit, authorization and schedule are this verification's from today.
        A re-check begun before is decided no more (`RecheckSuperseded`)."""
        where: list[str | int] = ["body", "recipient_id"]
        if verification.program not in ROLL_PROGRAMS:
            raise InvalidRequest.at(
                where, f"{verification.program} puts nobody on the roll: no household to change"
            )
        # Before anything is read: two changes of one household, or a change and another's
        # approval of one of its members, are one after the other.
        await repository.hold_the_roll()
        recipient = await repository.get(str(body.recipient_id), scope=principal)
        if recipient is None:
            raise InvalidRequest.at(where, "no recipient with this id in this API key's region")
        if recipient.region_code != verification.region_code:
            raise InvalidRequest.at(
                where,
                f"the recipient is on county {recipient.region_code}'s roll, this household "
                f"in county {verification.region_code}: a household that moved is stopped "
                "there and approved here as a new application",
            )
        if recipient.program != verification.program:
            raise InvalidRequest.at(
                where, f"the recipient receives {recipient.program}, not {verification.program}"
            )
        if recipient.status == wire.RecipientStatus.left.value:
            raise RecipientLeft(recipient.left_on, change=True)
        ours, theirs = await repository.households(
            verification.id, recipient.approved_verification_id
        )
        if not ours & theirs:
            # Nobody of the household on the roll: another household, which is a new
            # application, not a change (and a recipient's history is not handed over).
            raise InvalidRequest.at(
                where,
                "no member of this household is in the recipient's: a household whose "
                "members all differ is a new application (approve it without recipient_id)",
            )
        if ours == theirs:
            raise InvalidRequest.at(
                where,
                "these are the members on the roll already: a change of the household's "
                "circumstances is decided on its re-check, not as a change of members",
            )
        settled_at = await repository.household_settled_at(recipient)
        if settled_at is not None and verification.created_at <= settled_at:
            # Older facts than the roll's: an approval would undo a later change, or what a
            # re-check found.
            raise StaleChange(settled_at)
        problem = consent_problem(
            recipient,
            verification.consent_document_id,
            verification.consent_signed_on,
            today,
        )
        if problem is not None:
            raise Conflict(
                f"This verification's authorization {problem[1]}: verify the household "
                "anew with the authorization it has signed since"
            )
        paid = await repository.member_on_the_roll(
            verification.id, ROLL_PROGRAMS, besides=recipient.id
        )
        if paid is not None:
            member, on_the_roll = paid
            raise AlreadyOnTheRoll(mask_id_number(member.id_number), on_the_roll.program)
        recheck_class = wire.RecheckClass(body.recheck_class or recipient.recheck_class)
        months, consent_expires_on = _schedule(catalog, verification, recheck_class, today)
        await repository.update(
            recipient.id,
            status=wire.RecipientStatus.active.value,
            area=verification.area,
            township_code=verification.township_code,
            approved_verification_id=verification.id,
            approved_on=today,
            monthly_benefit=granted_benefit(verification, report, body),
            recheck_class=recheck_class.value,
            next_recheck_on=add_months(today, months),
            recheck_day=today.day,
            consent_document_id=verification.consent_document_id,
            consent_signed_on=verification.consent_signed_on,
            consent_expires_on=consent_expires_on,
            consent_withdrawn_on=None,
            updated_at=utcnow(),
        )
        return recipient

    async def page(
        self,
        session: AsyncSession,
        principal: Principal,
        where: wire.RecipientFilter,
        today: date,
    ) -> wire.RecipientPage:
        repository = RecipientRepository.from_session(session)
        listed = listing("recipients", where)
        rows = await repository.page(
            scope=narrow(principal.narrowed(where.region_code), where.township_code),
            where=where,
            limit=where.limit + 1,
            after=decode_cursor(where.cursor, listed) if where.cursor else None,
            today=today,
        )
        page = rows[: where.limit]
        return wire.RecipientPage(
            items=await self._views(repository, page, today),
            next_cursor=next_cursor(
                rows, where.limit, lambda row: (row.created_at, row.id), listed
            ),
        )

    async def read(
        self, session: AsyncSession, principal: Principal, recipient_id: str, today: date
    ) -> wire.Recipient:
        repository = RecipientRepository.from_session(session)
        recipient = await self.get(session, principal, recipient_id)
        return (await self._views(repository, [recipient], today))[0]

    async def get(
        self, session: AsyncSession, principal: Principal, recipient_id: str
    ) -> Recipient:
        recipient = await RecipientRepository.from_session(session).get(
            recipient_id, scope=principal
        )
        if recipient is None:
            raise RecipientNotFound()
        return recipient

    async def stop(
        self,
        session: AsyncSession,
        principal: Principal,
        recipient_id: str,
        body: wire.RecipientStop,
        today: date,
    ) -> wire.Recipient:
        recipient = await self.get(session, principal, recipient_id)
        if recipient.status == wire.RecipientStatus.left.value:
            raise Conflict("The household is off the roll already")
        names = await VerificationRepository.from_session(session).member_names(
            recipient.approved_verification_id
        )
        refuse_member_names(body.reason, names, ["body", "reason"])
        repository = RecipientRepository.from_session(session)
        await repository.update(
            recipient.id,
            status=wire.RecipientStatus.left.value,
            left_on=today,
            left_reason=f"stopped: {body.reason}",
            updated_at=utcnow(),
        )
        await _resolve_warnings_of_leaver(
            session, (principal.key_id, principal.name), recipient.id, "stopped"
        )
        await session.refresh(recipient)
        return (await self._views(repository, [recipient], today))[0]

    async def renew_consent(
        self,
        session: AsyncSession,
        principal: Principal,
        recipient_id: str,
        body: wire.ConsentRenewal,
        catalog: PolicyCatalog,
        today: date,
    ) -> wire.Recipient:
        """Record a new authorization; a re-check held for one runs at the next pass."""
        recipient = await self.get(session, principal, recipient_id)
        if recipient.status == wire.RecipientStatus.left.value:
            raise Conflict("The household is off the roll")
        if body.signed_on > today:
            raise InvalidRequest.at(["body", "signed_on"], "cannot be in the future")
        problem = consent_problem(recipient, body.document_id, body.signed_on, today)
        if problem is not None:
            field, why = problem
            raise InvalidRequest.at(["body", field], why)
        resolved = policy_for(catalog, recipient, today)
        months = resolved.parameters.consent_valid_months if resolved else None
        repository = RecipientRepository.from_session(session)
        await repository.update(
            recipient.id,
            consent_document_id=body.document_id,
            consent_signed_on=body.signed_on,
            consent_expires_on=add_months(body.signed_on, months) if months else None,
            consent_withdrawn_on=None,
            updated_at=utcnow(),
        )
        await session.refresh(recipient)
        return (await self._views(repository, [recipient], today))[0]

    async def _views(
        self, repository: RecipientRepository, recipients: list[Recipient], today: date
    ) -> list[wire.Recipient]:
        members = await repository.members([r.approved_verification_id for r in recipients])
        held = await repository.awaiting_consent([r.id for r in recipients])
        return [
            wire.Recipient(
                id=r.id,
                reference=r.reference,
                program=r.program,
                area=r.area,
                region_code=r.region_code,
                township_code=r.township_code,
                status=wire.RecipientStatus(r.status),
                recheck_class=wire.RecheckClass(r.recheck_class),
                monthly_benefit=r.monthly_benefit,
                origin_verification_id=r.origin_verification_id,
                approved_verification_id=r.approved_verification_id,
                approved_on=r.approved_on,
                next_recheck_on=(
                    None if r.status == wire.RecipientStatus.left.value else r.next_recheck_on
                ),
                consent=wire.RecipientConsent(
                    document_id=r.consent_document_id,
                    signed_on=r.consent_signed_on,
                    expires_on=r.consent_expires_on,
                    withdrawn_on=r.consent_withdrawn_on,
                ),
                # One who left is asked nothing more, a new authorization included.
                needs_new_consent=r.status != wire.RecipientStatus.left.value
                and (r.id in held or authorization_expired(r.consent_expires_on, today)),
                members=[
                    Member(
                        id_number=mask_id_number(m.id_number),
                        name=mask_name(m.name),
                        relation=m.relation,
                        declared_monthly_income=m.declared_monthly_income,
                    )
                    for m in members.get(r.approved_verification_id, [])
                ],
                left_on=r.left_on,
                left_reason=r.left_reason,
                created_at=r.created_at,
            )
            for r in recipients
        ]


recipient = RecipientService()
