"""All SQL of policy simulations: the one stored verification that stands for a household.

A household is verified more than once: at every re-check while it is on the roll, and
when an application returned or rejected is sent again. A simulation counts each
household once, by one completed verification:

- **On the roll** (a recipient of the program, active or under review): its approved
  verification, the one its benefit is paid on. Every other verification that names one
  of its members is left out: the one that put it on the roll (when a re-check's approval
  has taken its place), its re-checks, its earlier applications, whatever their decision.
  A person is on a program's roll once: no other household naming them can be approved
  while they are on it (`409 already-on-the-roll`), in any area or county.
- **Not on the roll** (never approved, or left since), in a program with a roll: its
  latest verification with exactly the same members (by their blind indexes), of the same
  program and area, inside the region simulated. The same people are the same household;
  a household whose members changed between two verifications is not told apart from
  another by the people, and counts once per composition.
- **linshi** is paid once per application (a one-off for each emergency), and has no roll:
  every verification counts.

The rule looks at everything stored, not only at the window a simulation asks for: a
household counts when the verification that stands for it completed in the window.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased, selectinload

from service.auth.scope import scoped
from service.models import Member, Report, Verification
from service.recipient.repository import approved_on_the_roll, members_on_the_roll
from service.repository import Repository
from service.verification.repository import in_scope

COMPLETED = "completed"


class SimulationRepository(Repository):
    async def households(
        self,
        *,
        scope: str,
        program: str,
        area: str,
        completed_from: datetime | None,
        completed_to: datetime | None,
        limit: int,
        same_people_once: bool,
    ) -> list[tuple[Verification, Report]]:
        """The completed verifications of `program` and `area` inside `scope` that stand for
        a household each (see the module), completed in the window given, oldest first, at
        most `limit`; with their reports, members and sources. Purged records cannot be
        re-scored (retention): a household whose verification that stands for it was purged
        is left out. `same_people_once`: an earlier verification of a household not on the
        roll is left out for a later one of the same members (a program with a roll), or
        every one counts (linshi)."""
        statement = in_scope(
            select(Verification, Report)
            .join(Report, Report.verification_id == Verification.id)
            .options(selectinload(Verification.members), selectinload(Verification.sources))
            .where(
                Verification.status == COMPLETED,
                Verification.program == program,
                Verification.area == area,
                Verification.records_purged_at.is_(None),
            ),
            scope,
        )
        if completed_from is not None:
            statement = statement.where(Verification.completed_at >= completed_from)
        if completed_to is not None:
            statement = statement.where(Verification.completed_at <= completed_to)
        off_the_roll = ~exists(members_on_the_roll(Verification.id, (program,)))
        if same_people_once:
            off_the_roll = and_(off_the_roll, ~_same_people_later(scope))
        statement = (
            statement.where(or_(approved_on_the_roll(Verification.id), off_the_roll))
            .order_by(Verification.completed_at, Verification.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(statement)).all()]


def _same_people_later(scope: str) -> ColumnElement[bool]:
    """A verification of exactly the same members was submitted later, is completed with
    its records kept, of the same program and area, inside `scope` (what stands for the
    household is always one the caller may see). Found from this verification's members
    through the blind index, never by a scan: the later ones that name every member of
    this one, and have as many."""
    later = aliased(Verification)
    ours, theirs = aliased(Member), aliased(Member)
    ours_count = _members_of(Verification.id)
    return exists(
        scoped(
            select(1)
            .select_from(ours)
            .join(theirs, theirs.id_number_blind == ours.id_number_blind)
            .join(later, later.id == theirs.verification_id)
            .where(
                ours.verification_id == Verification.id,
                later.status == COMPLETED,
                later.program == Verification.program,
                later.area == Verification.area,
                later.records_purged_at.is_(None),
                or_(
                    later.created_at > Verification.created_at,
                    and_(later.created_at == Verification.created_at, later.id > Verification.id),
                ),
            ),
            scope,
            later.region_code,
            later.township_code,
        )
        .group_by(later.id)
        .having(func.count() == ours_count, _members_of(later.id) == ours_count)
    )


def _members_of(verification_id: InstrumentedAttribute[Any]) -> ColumnElement[int]:
    """How many members the verification has; correlated with the statement it is in, at
    whatever depth."""
    return (
        select(func.count())
        .select_from(Member)
        .where(Member.verification_id == verification_id)
        .correlate_except(Member)
        .scalar_subquery()
    )
