"""What one sandbox instance holds, and how a handler finds it."""

from dataclasses import dataclass, field

from starlette.requests import Request

from sandbox.clock import SandboxClock
from sandbox.consent import ConsentLog
from sandbox.faults import FaultBoard
from sandbox.inquiries import Inquiries
from sandbox.people import People
from sandbox.tokens import Tokens


@dataclass(frozen=True)
class SandboxState:
    """Seeded people, faults, open bank inquiries, issued tokens, the consent each agency
    was told and the clock of one app (`app.state.sandbox`)."""

    people: People
    faults: FaultBoard
    inquiries: Inquiries
    consent: ConsentLog
    tokens: Tokens = field(default_factory=Tokens)
    clock: SandboxClock = field(default_factory=SandboxClock)
    """The agencies' time (`POST /clock` moves it forward); the inquiries read it."""


def sandbox_state(request: Request) -> SandboxState:
    """The state of the sandbox app serving this request, mounted or not.

    A plain call rather than a FastAPI dependency: resolving a dependency costs about a
    quarter of an agency handler's time, and agencies answer thousands of calls a second.
    Routers are module-level, so building an app (once per test) stays cheap.
    """
    state: SandboxState = request.app.state.sandbox
    return state
