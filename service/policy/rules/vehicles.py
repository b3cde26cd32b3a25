"""Vehicles: owning a non-exempt motor vehicle.

Exempt types (by default motorcycles and disability vehicles) are noted only. Any other
vehicle valued above `vehicle_value_threshold` is disqualifying; at or below it, a warning
(it lowers the score and the approver sees it, but it does not force a review by itself).
"""

from schemas.evidence import VehicleRecord
from schemas.money import format_money
from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def check_vehicles(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    findings = []
    for item, record in facts.of_type(VehicleRecord):
        args = {
            "member": facts.masked(item.member),
            "plate": record.plate,
            "type": record.type,
            "value": format_money(record.value),
            "threshold": format_money(policy.vehicle_value_threshold),
        }
        if record.type in policy.vehicle_exempt_types:
            finding = RuleFinding("vehicle_exempt", "info", args, (facts.evidence(item),))
        elif record.value > policy.vehicle_value_threshold:
            finding = RuleFinding(
                "vehicle_over_threshold", "disqualifying", args, (facts.evidence(item),)
            )
        else:
            finding = RuleFinding(
                "vehicle_under_threshold", "warning", args, (facts.evidence(item),)
            )
        findings.append(finding)
    return findings
