"""What connectors are asked about a stored verification: its household and why."""

from schemas.evidence import HouseholdQuery, MemberQuery, RequestContext
from service.verification.stored import StoredVerification


def household_query(verification: StoredVerification) -> HouseholdQuery:
    """The household of `verification` (members loaded, or the rows a claim reads) with
    its request context: the consent document it was submitted with and its program as
    the purpose.

    Built from the stored row wherever a partner is asked: a run, and a collect of a
    parked source long after the run ended, alike.
    """
    return HouseholdQuery(
        region_code=verification.region_code,
        as_of=verification.as_of,
        members=tuple(
            MemberQuery(id_number=member.id_number, name=member.name)
            for member in verification.members
        ),
        context=RequestContext.of(verification.consent_document_id, verification.program),
    )
