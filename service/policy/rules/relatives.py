"""Near relatives of officials (近亲属备案): a guard against 人情保 / 关系保.

A member found in the near-relative registry is not disqualified, but the approver must see
it and the case goes to review.
"""

from schemas.identity import mask_id_number, redact_id_numbers
from schemas.policy import PolicyParameters
from schemas.report import EvidenceRef
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding

REGISTRY = "near_relative_registry"


def check_near_relatives(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    order = {member.id_number.upper(): index for index, member in enumerate(facts.members)}
    matches = sorted(
        facts.near_relatives,
        key=lambda match: order.get(match.id_number.upper(), len(order)),
    )
    findings = []
    for match in matches:
        member = mask_id_number(match.id_number)
        position = redact_id_numbers(match.staff_position)
        relationship = redact_id_numbers(match.relationship)
        findings.append(
            RuleFinding(
                "near_relative_registered",
                "warning",
                {"member": member, "position": position, "relationship": relationship},
                (
                    EvidenceRef(
                        source=REGISTRY,
                        member=member,
                        fact=f"staff_position={position} relationship={relationship}",
                    ),
                ),
            )
        )
    return findings
