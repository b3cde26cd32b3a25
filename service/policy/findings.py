"""What a rule returns: a finding before its message is written in a language.

Rules state facts (code, severity, message arguments, evidence); the message catalogue
turns them into text. Keeping text out of the rules is what makes `language` unable to
change anything but wording.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.report import EvidenceRef, Severity


@dataclass(frozen=True)
class RuleFinding:
    code: str
    severity: Severity
    args: Mapping[str, str] = field(default_factory=dict)
    """Message arguments, already formatted (amounts as "640.00", members masked)."""
    evidence: tuple[EvidenceRef, ...] = ()
