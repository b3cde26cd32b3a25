"""HEAD wherever GET is (RFC 9110 §9.3.2): the GET's status and headers, without its body.
Load balancers and uptime checks probe `/healthz` with HEAD.

Pure ASGI, outermost: everything inside sees a GET (the route, the caller's scope, the
audit trail's read), and the answer's body is dropped on the way out. uvicorn's own scope
is left as it was, so its access line still says HEAD."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the body is not sent: only its end is
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
