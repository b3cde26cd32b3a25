"""Who is calling: a role and a region scope, resolved from an API key."""

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    caseworker = "caseworker"
    approver = "approver"
    operator = "operator"
    integrator = "integrator"
    auditor = "auditor"
    admin = "admin"


ALL_REGIONS = ("", "00", "*")


def normalise_region_prefix(value: str) -> str:
    """'00' and '*' mean every region; otherwise a 2-, 4- or 6-digit GB/T 2260 prefix."""
    value = value.strip()
    if value in ALL_REGIONS:
        return ""
    if not (value.isascii() and value.isdigit()) or len(value) not in (2, 4, 6):
        raise ValueError("region must be a 2-, 4- or 6-digit code, or 00 / * for all regions")
    return value


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: Role
    region_prefix: str

    def covers(self, region_code: str) -> bool:
        return region_code.startswith(self.region_prefix)

    def narrowed(self, requested: str | None) -> str:
        """The requested region prefix, kept inside this caller's own region."""
        if not requested or self.region_prefix.startswith(requested):
            return self.region_prefix
        if requested.startswith(self.region_prefix):
            return requested
        # Disjoint regions: a prefix no region code can match, so nothing is found.
        return self.region_prefix + "#"
