"""Authentication before the body: a `/v1` request from nobody is refused before the app
reads or parses a byte of what it sent.

FastAPI parses a request's body before it resolves dependencies, so a bearer-token
dependency alone lets anyone make the service parse up to the body limit. This middleware
resolves the caller first and leaves the principal in the request state, where the
`PrincipalDep` dependency takes it.
"""

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.service import bearer_token, principal_for
from service.errors import Unauthorized, problem_response

PRINCIPAL_STATE_KEY = "principal"


class AuthenticateFirst:
    def __init__(self, app: ASGIApp, *, prefix: str = "/v1") -> None:
        self.app = app
        self.prefix = prefix

    def _guarded(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        session_factory = state.get("session_factory")
        if scope["type"] != "http" or not self._guarded(scope["path"]) or session_factory is None:
            # Without the lifespan's resources (an app driven without its lifespan), the
            # dependency authenticates as before.
            await self.app(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization")
        try:
            principal = await principal_for(session_factory, authorization)
        except (SQLAlchemyError, OSError):
            # The database is not answering: let the request through, so that the app's own
            # dependency meets the same failure and answers it the way it answers any other.
            await self.app(scope, receive, send)
            return
        if principal is None:
            error = (
                Unauthorized()
                if bearer_token(authorization) is None
                else Unauthorized("The bearer token is unknown or revoked")
            )
            await problem_response(error.problem(scope["path"]), error.headers)(
                scope, receive, send
            )
            return
        state[PRINCIPAL_STATE_KEY] = principal
        await self.app(scope, receive, send)
