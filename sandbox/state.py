"""What one sandbox instance holds, and how a handler finds it."""

from dataclasses import dataclass

from starlette.requests import Request

from sandbox.faults import FaultBoard
from sandbox.inquiries import Inquiries
from sandbox.people import People


@dataclass(frozen=True)
class SandboxState:
    """Seeded people, faults and open bank inquiries of one app (`app.state.sandbox`)."""

    people: People
    faults: FaultBoard
    inquiries: Inquiries


def sandbox_state(request: Request) -> SandboxState:
    """The state of the sandbox app serving this request, mounted or not.

    A plain call rather than a FastAPI dependency: resolving a dependency costs about a
    quarter of an agency handler's time, and agencies answer thousands of calls a second.
    Routers are module-level, so building an app (once per test) stays cheap.
    """
    state: SandboxState = request.app.state.sandbox
    return state
