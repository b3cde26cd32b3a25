"""Vehicles: owning a non-exempt motor vehicle.

Exempt types (by default motorcycles and disability vehicles) are noted only. For any other
vehicle:
- value unknown (the partner recorded none, or recorded 0) → `vehicle_value_unknown`, a
  warning that sends the household to review: a missing fact is never a good fact, and a
  car of unknown value may well be worth more than the limit;
- value above `vehicle_value_threshold` → disqualifying;
- value at or below it → a warning (it lowers the score and the approver sees it, but it
  does not force a review by itself).
"""

from schemas.evidence import VehicleRecord
from schemas.money import format_money
from schemas.policy import PolicyParameters
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def value_unknown(record: VehicleRecord) -> bool:
    """No usable value: none recorded, or 0 (no motor vehicle is worth nothing)."""
    return record.value is None or record.value == 0


def check_vehicles(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    findings = []
    for item, record in facts.of_type(VehicleRecord):
        args = {
            "member": facts.masked(item.member),
            "plate": record.plate,
            "type": record.type,
            "value": format_money(record.value) if record.value is not None else "-",
            "threshold": format_money(policy.vehicle_value_threshold),
        }
        evidence = (facts.evidence(item),)
        if record.type in policy.vehicle_exempt_types:
            finding = RuleFinding("vehicle_exempt", "info", args, evidence)
        elif value_unknown(record):
            finding = RuleFinding("vehicle_value_unknown", "warning", args, evidence)
        elif record.value is not None and record.value > policy.vehicle_value_threshold:
            finding = RuleFinding("vehicle_over_threshold", "disqualifying", args, evidence)
        else:
            finding = RuleFinding("vehicle_under_threshold", "warning", args, evidence)
        findings.append(finding)
    return findings
