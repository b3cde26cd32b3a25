"""FastAPI dependencies as Annotated aliases: handlers declare what they need by type."""

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.registry import ConnectorRegistry
from service.auth.principal import PRINCIPAL_STATE_KEY, Principal, Role
from service.auth.roles import ROLE_CHECKS, allowed_roles, check_role
from service.auth.service import principal_for
from service.config import Settings
from service.connector.monitor import HealthMonitor
from service.db import WriteGate, session_scope
from service.errors import Forbidden, Unauthorized
from service.jobs.completion import Completions
from service.jobs.queue import RunQueue
from service.policy.catalog import PolicyCatalog

# The providers below are `async def` though they only read the app's state: FastAPI runs
# a plain `def` dependency in a worker thread, a thread switch both ways per dependency
# and request (about 1 ms of CPU per verification over the seven that intake uses).


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.state.session_factory):
        yield session


async def get_registry(request: Request) -> ConnectorRegistry:
    registry: ConnectorRegistry = request.state.registry
    return registry


async def get_health(request: Request) -> HealthMonitor:
    health: HealthMonitor = request.state.health
    return health


async def get_catalog(request: Request) -> PolicyCatalog:
    catalog: PolicyCatalog = request.state.catalog
    return catalog


async def get_queue(request: Request) -> RunQueue:
    queue: RunQueue = request.state.queue
    return queue


async def get_completions(request: Request) -> Completions:
    completions: Completions = request.state.completions
    return completions


async def get_write_gate(request: Request) -> WriteGate:
    gate: WriteGate = request.state.write_gate
    return gate


@dataclass(frozen=True, slots=True)
class IntakeParts:
    """What a verification's intake uses of the app, read from its state by the intake's
    admission (`service.admission.admit`) rather than by dependencies of their own:
    FastAPI spends about 14 µs resolving each dependency of a request, and intake used
    six (the settings, policies, connectors, run queue, completions, gate)."""

    settings: Settings
    catalog: PolicyCatalog
    registry: ConnectorRegistry
    queue: RunQueue
    completions: Completions
    write_gate: WriteGate


SettingsDep = Annotated[Settings, Depends(get_settings)]
WriteGateDep = Annotated[WriteGate, Depends(get_write_gate)]
# scope="function": the commit (or rollback) runs before the response is sent, so a client
# never hears 2xx for a write that then fails to commit, and reads its own writes at once.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
RegistryDep = Annotated[ConnectorRegistry, Depends(get_registry)]
HealthDep = Annotated[HealthMonitor, Depends(get_health)]
CatalogDep = Annotated[PolicyCatalog, Depends(get_catalog)]
QueueDep = Annotated[RunQueue, Depends(get_queue)]
CompletionsDep = Annotated[Completions, Depends(get_completions)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `hedui apikey create`")


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # Resolved before the body was read (service/auth/middleware.py); the lookup below
    # serves only when that could not happen, in a short session of its own: no request
    # session among this dependency's own (each costs FastAPI's resolution per request).
    resolved = getattr(request.state, PRINCIPAL_STATE_KEY, None)
    if isinstance(resolved, Principal):
        return resolved
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    principal = await principal_for(
        request.state.session_factory, f"Bearer {credentials.credentials}"
    )
    if principal is None:
        raise Unauthorized("The bearer token is unknown or revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency admitting the given roles (and admin, who may do everything)."""
    allowed = allowed_roles(*roles)

    async def check(principal: PrincipalDep) -> Principal:
        return check_role(principal, allowed)

    ROLE_CHECKS[check] = (allowed, False)
    return check


EVERY_REGION = (
    "Connectors serve every region: registering, changing, enabling, disabling, pausing or "
    "resuming one needs a key of every region (--region 00)"
)


def check_every_region(principal: Principal) -> Principal:
    """`principal`, if its key covers every region; else 403. What a connector asks, and
    whether it is asked at all, changes the verifications of every region alike."""
    if principal.region_prefix:
        raise Forbidden(EVERY_REGION)
    return principal


def require_every_region(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """`require_role`, for a key of every region only (`check_every_region`)."""
    allowed = allowed_roles(*roles)

    async def check(principal: PrincipalDep) -> Principal:
        return check_every_region(check_role(principal, allowed))

    ROLE_CHECKS[check] = (allowed, True)
    return check


CaseworkerDep = Annotated[Principal, Depends(require_role(Role.caseworker))]
ApproverDep = Annotated[Principal, Depends(require_role(Role.approver))]
ReaderDep = Annotated[
    Principal, Depends(require_role(Role.caseworker, Role.approver, Role.auditor))
]
AuditorDep = Annotated[Principal, Depends(require_role(Role.auditor))]
PolicyAnalystDep = Annotated[Principal, Depends(require_role(Role.approver, Role.auditor))]
AdminDep = Annotated[Principal, Depends(require_role(Role.admin))]
IntegratorDep = Annotated[Principal, Depends(require_role(Role.integrator))]
OperatorDep = Annotated[Principal, Depends(require_role(Role.operator))]
ConnectorOwnerDep = Annotated[Principal, Depends(require_every_region(Role.integrator))]
"""Who registers, changes, enables and disables a declarative connector."""
PartnerSwitchDep = Annotated[Principal, Depends(require_every_region(Role.operator))]
"""Who pauses and resumes a partner."""
ConnectorReaderDep = Annotated[Principal, Depends(require_role(Role.operator, Role.integrator))]
"""Who reads connectors, their health and their specs: operators and integrators."""
RegistrarDep = Annotated[Principal, Depends(require_role(Role.auditor))]
"""Who registers near relatives (the registry's keepers are auditors)."""
RegistryReaderDep = Annotated[Principal, Depends(require_role(Role.auditor, Role.approver))]
