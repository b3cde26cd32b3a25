"""Authentication before the body: a `/v1` request from nobody is refused before the app
reads or parses a byte of what it sent.

FastAPI parses a request's body before it resolves dependencies, so a bearer-token
dependency alone lets anyone make the service parse up to the body limit. This middleware
resolves the caller first and leaves the principal in the request state, where the
`PrincipalDep` dependency takes it.

Keys are looked up through the process's `PrincipalCache` (service/auth/cache.py): a
request, and above all a refusal, costs no query while its key's entry is fresh.
"""

from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.cache import PrincipalCache
from service.auth.principal import PRINCIPAL_STATE_KEY
from service.auth.service import Lookup, bearer_token, principal_for
from service.error_handlers import problem_response
from service.errors import Unauthorized

ONE_AUTHORIZATION = "Send one Authorization header, not several"


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
        sent = [value for name, value in scope["headers"] if name == b"authorization"]
        if len(sent) > 1:
            # Which one counts would be up to each layer a request passes (a proxy may read
            # the first, an app the last): none does.
            await self._refuse(Unauthorized(ONE_AUTHORIZATION), scope, receive, send)
            return
        token = bearer_token(sent[0].decode("latin-1") if sent else None)
        if token is None:
            await self._refuse(Unauthorized(), scope, receive, send)
            return
        cache: PrincipalCache | None = state.get("principals")
        try:
            if cache is not None:
                found = await cache.lookup(token)
            else:
                found = Lookup(await principal_for(session_factory, f"Bearer {token}"))
        except (SQLAlchemyError, OSError):
            # The database is not answering: let the request through, so that the app's own
            # dependency meets the same failure and answers it the way it answers any other.
            await self.app(scope, receive, send)
            return
        if found.principal is None:
            detail = found.refusal or "The bearer token is unknown, expired or revoked"
            await self._refuse(Unauthorized(detail), scope, receive, send)
            return
        state[PRINCIPAL_STATE_KEY] = found.principal
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(error: Unauthorized, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(error.problem(scope["path"]), error.headers)(scope, receive, send)
