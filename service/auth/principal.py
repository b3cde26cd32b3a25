"""Who is calling: a role and a region scope, resolved from an API key."""

from dataclasses import dataclass
from enum import StrEnum

from schemas.verification import PROVINCE_CODES


class Role(StrEnum):
    caseworker = "caseworker"
    approver = "approver"
    operator = "operator"
    integrator = "integrator"
    auditor = "auditor"
    admin = "admin"


PRINCIPAL_STATE_KEY = "principal"
"""Where a request's caller, once authenticated, is kept (`request.state`)."""

ALL_REGIONS = ("", "00", "*")
"""A filter's region that narrows nothing: none given, `00` or `*`."""
EVERY_REGION = ("00", "*")
"""How a key of every region is asked for: said in so many words, never by an empty value
(a script's unset variable, `--region "$REGION"`, would otherwise make one)."""


def normalise_region_prefix(value: str) -> str:
    """'00' and '*' mean every region; otherwise a 2-, 4- or 6-digit GB/T 2260 prefix, or a
    9-digit township (乡镇/街道) code, of a province that exists (a key of another would
    see nothing, ever)."""
    value = value.strip()
    if value in EVERY_REGION:
        return ""
    if not value:
        raise ValueError("region is empty: give a region code, or 00 / * for all regions")
    if not (value.isascii() and value.isdigit()) or len(value) not in (2, 4, 6, 9):
        raise ValueError(
            "region must be a 2-, 4- or 6-digit code, a 9-digit township code, "
            "or 00 / * for all regions"
        )
    if value[:2] not in PROVINCE_CODES:
        raise ValueError(
            f"region {value} does not start with a GB/T 2260 province code (11 Beijing to "
            "65 Xinjiang, 71 Taiwan, 81 Hong Kong, 82 Macao), so no household is in it; "
            "00 / * for all regions"
        )
    return value


EVERY_REGION_CODE = "00"
"""How every region is shown (a stored prefix of ""), as it is given: `--region 00`."""


def shown_region(prefix: str) -> str:
    """A stored region prefix as the API shows it: `normalise_region_prefix`'s inverse."""
    return prefix or EVERY_REGION_CODE


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: Role
    region_prefix: str

    def covers(self, region_code: str, township_code: str | None = None) -> bool:
        """Whether a household of this county (and township, if any) is in scope."""
        return covers(self.region_prefix, region_code, township_code)

    def narrowed(self, requested: str | None) -> str:
        """The requested region prefix, kept inside this caller's own region."""
        return narrow(self.region_prefix, requested)


def covers(prefix: str, region_code: str, township_code: str | None = None) -> bool:
    """Whether a scope of `prefix` (a key's, or the creator's of a webhook) covers a
    household of this county (and township, if any): in memory, what `scoped` asks of
    the rows."""
    return (township_code or region_code).startswith(prefix)


def narrow(prefix: str, requested: str | None) -> str:
    """`requested` (a filter's region or township code), kept inside `prefix`; `00`, every
    region, as it is given and shown, narrows nothing."""
    if not requested or requested in ALL_REGIONS or prefix.startswith(requested):
        return prefix
    if requested.startswith(prefix):
        return requested
    # Disjoint regions: a prefix no region or township code can match, so nothing is found.
    return prefix + "#"
