"""Incompleteness: a source that did not answer reliably leaves the picture incomplete.

Only `ok` and `no_record` are reliable answers. Anything else (pending, error, timeout)
means records may be missing, so the household can never be found eligible on it.
A household checked against no source at all is incomplete too.
"""

from schemas.identity import redact_id_numbers
from schemas.policy import PolicyParameters
from schemas.report import EvidenceRef
from service.policy.facts import HouseholdFacts
from service.policy.findings import RuleFinding


def check_sources(facts: HouseholdFacts, policy: PolicyParameters) -> list[RuleFinding]:
    if not facts.sources:
        return [RuleFinding("no_sources", "warning")]
    findings = []
    for source in facts.sources:
        if source.status.settled:
            continue
        fact = f"status={source.status.value}"
        if source.detail:
            fact += f" detail={source.detail}"
        findings.append(
            RuleFinding(
                "source_incomplete",
                "warning",
                {"source": source.source, "status": source.status.value},
                (EvidenceRef(source=source.source, fact=redact_id_numbers(fact)),),
            )
        )
    return findings
