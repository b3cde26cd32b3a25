"""Which roles an endpoint admits: the checks, and the table of them that the API
document's 403s and the routes' order of refusals read."""

from collections.abc import Callable
from typing import Any

from service.auth.principal import Principal, Role
from service.errors import Forbidden

ROLE_CHECKS: dict[Callable[..., Any], tuple[frozenset[Role], bool]] = {}
"""Each dependency that checks the caller's role: the roles it admits, and whether it asks
for a key of every region. The API document's 403s are derived from it (`service.openapi`)."""


def role_refusal(allowed: frozenset[Role]) -> Forbidden:
    names = ", ".join(sorted(role.value for role in allowed))
    return Forbidden(f"This needs one of the roles: {names}")


def check_role(principal: Principal, allowed: frozenset[Role]) -> Principal:
    """`principal`, if its role is one of `allowed` (see `service.deps.require_role`); else
    403."""
    if principal.role not in allowed:
        raise role_refusal(allowed)
    return principal


def allowed_roles(*roles: Role) -> frozenset[Role]:
    """The given roles and admin, who may do everything."""
    return frozenset({*roles, Role.admin})
