"""What a request must be before the app reads it: small enough, quick enough, free of
NUL characters, with a query that is UTF-8, and each header that says one thing sent once.

Pure ASGI, outside everything else, so that nothing of an oversized body is read or
parsed: a declared `Content-Length` over the limit is answered `413` at once, and a body
streamed without one (chunked) is cut off the moment it passes the limit.

A body must also arrive in time: `body_timeout_s` from the moment the request's headers
are in, plus a second for every `body_min_rate` bytes received (Apache's `mod_reqtimeout`
rule), so a large upload at any honest speed goes through while a caller trickling bytes
(slowloris) is answered `408` and its connection closed, instead of holding a connection
and a task for as long as it likes.
"""

import asyncio
import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.problem import Problem, ProblemError
from service.error_handlers import problem_response
from service.errors import PROBLEM_BASE, InvalidRequest, UnsupportedMediaType

NUL = "\x00"
_NUL_MESSAGE = "must not contain a NUL character"
_NOT_UTF8_MESSAGE = "must be UTF-8 text (percent-encoded)"
_REPEATED_MESSAGE = "is given more than once; give it once"

SINGLE_HEADERS = {
    b"content-type": "Content-Type",
    b"idempotency-key": "Idempotency-Key",
}
"""Headers that say one thing: sent twice, the app would read the first and a proxy or a
retry might act on the second (two keys, two media types). Two `Authorization` headers
are the caller's authentication failing: 401 (`service.auth.middleware`)."""


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """A larger limit for the paths that take large bodies, read as streams (batches)."""

    paths: re.Pattern[str]
    max_bytes: int
    setting: str


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit. An HTTPException, so
    that FastAPI lets it through while reading the body and the one handler renders it."""

    def __init__(self, limit: int, setting: str = "HEDUI_MAX_BODY_BYTES") -> None:
        super().__init__(413, too_large_detail(limit, setting))


def body_limit(
    method: str, path: str, max_body_bytes: int, larger: tuple[BodyLimit, ...]
) -> tuple[int, str]:
    """The body limit of a request, and the setting that says it."""
    for limit in larger:
        if method == "POST" and limit.paths.fullmatch(path):
            return limit.max_bytes, limit.setting
    return max_body_bytes, "HEDUI_MAX_BODY_BYTES"


def too_large_detail(limit: int, setting: str = "HEDUI_MAX_BODY_BYTES") -> str:
    return f"The request body is larger than {limit} bytes ({setting})"


class BodyTimeout(HTTPException):
    """Raised from `receive` when the body is late; the connection is closed after the
    answer (the rest of the body is never read)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, body_timeout_detail(timeout_s), headers=dict(CLOSE))


CLOSE = (("Connection", "close"),)


def body_timeout_detail(timeout_s: float) -> str:
    return (
        f"The request body did not arrive within {timeout_s:g} s (HEDUI_BODY_TIMEOUT_S, "
        "longer for large bodies sent at a steady pace)"
    )


class RequestGuard:
    """Refuses oversized bodies (413), late ones (408), NUL characters in the path or query
    and query values that are not UTF-8 (422)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        larger: tuple[BodyLimit, ...] = (),
        body_timeout_s: float = 10.0,
        body_min_rate: int = 500,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger = larger
        self.body_timeout_s = body_timeout_s
        self.body_min_rate = body_min_rate

    def _limit(self, scope: Scope) -> tuple[int, str]:
        return body_limit(scope.get("method", ""), scope["path"], self.max_body_bytes, self.larger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        problem = (
            _text_problem(scope)
            or _header_problem(scope)
            or self._declared_too_large(scope, limit, setting)
        )
        if problem is not None:
            await problem_response(problem)(scope, receive, send)
            return

        received = 0
        started = False
        loop = asyncio.get_running_loop()
        begun = loop.time()

        complete = False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:
                # The body is in: what is left to wait for is the caller going away
                # (streamed answers, `Prefer: wait`), for as long as the answer takes.
                return await receive()
            # Until now, plus a second for every `body_min_rate` bytes that have come.
            deadline = begun + self.body_timeout_s + received / self.body_min_rate
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Read outside FastAPI's handlers (a raw `request.body()` in a mounted app):
            # answer here, unless an answer has begun, which then stands.
            if not started:
                await problem_response(too_large(scope["path"], limit, setting))(
                    scope, receive, send
                )
        except BodyTimeout:
            if not started:
                problem = late(scope["path"], self.body_timeout_s)
                await problem_response(problem, dict(CLOSE))(scope, receive, send)

    def _declared_too_large(self, scope: Scope, limit: int, setting: str) -> Problem | None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return too_large(scope["path"], limit, setting)
        return None


def too_large(path: str, limit: int, setting: str) -> Problem:
    return Problem(
        type=PROBLEM_BASE + "too-large",
        title=HTTPStatus(413).phrase,
        status=413,
        detail=too_large_detail(limit, setting),
        instance=path,
    )


def late(path: str, timeout_s: float) -> Problem:
    return Problem(
        type=PROBLEM_BASE + "body-timeout",
        title=HTTPStatus(408).phrase,
        status=408,
        detail=body_timeout_detail(timeout_s),
        instance=path,
    )


def _text_problem(scope: Scope) -> Problem | None:
    """PostgreSQL refuses NUL in text (SQLite stores it): refused alike on both, up front.
    So is a query value that is not UTF-8 once percent-decoded (`%ED%A0%80`, `%FF`), which
    would otherwise be read with replacement characters and stored so."""
    loc: list[str | int] | None = None
    message = _NUL_MESSAGE
    if NUL in scope["path"]:
        loc = ["path"]
    else:
        query = scope.get("query_string", b"").decode("latin-1")
        for raw_name, raw_value in parse_qsl(query, keep_blank_values=True, encoding="latin-1"):
            name = raw_name.encode("latin-1").decode("utf-8", "replace")
            try:
                text = [raw.encode("latin-1").decode("utf-8") for raw in (raw_name, raw_value)]
            except UnicodeDecodeError:
                loc, message = ["query", name.replace(NUL, "")], _NOT_UTF8_MESSAGE
                break
            if any(NUL in part for part in text):
                loc = ["query", name.replace(NUL, "")]
                break
    if loc is None:
        return None
    return InvalidRequest.at(loc, message).problem(scope["path"].replace(NUL, ""))


_ENCODED_MESSAGE = "Send the body as it is: a Content-Encoding (gzip, deflate, br) is not read"
_CHARSET_MESSAGE = (
    "Send the body in UTF-8 (charset=utf-8, or no charset): JSON is read as UTF-8 only "
    "(RFC 8259 §8.1), and text in another charset would be stored garbled"
)


def _foreign_charset(value: bytes) -> bool:
    """A Content-Type naming a charset other than UTF-8 (`; charset=latin-1`), in any of
    its charset parameters (one sent twice, `charset=utf-8; charset=utf-16`, is read by
    some parsers by its first and by others by its last)."""
    for parameter in value.split(b";")[1:]:
        name, _, given = parameter.partition(b"=")
        if name.strip().lower() == b"charset" and given.strip().strip(b'"').lower() not in (
            b"utf-8",
            b"utf8",
        ):
            return True
    return False


def _header_problem(scope: Scope) -> Problem | None:
    """A header that may come once, sent twice; or a body sent compressed (read as it came,
    it would be taken for malformed JSON, or a batch's lines for invalid ones), or in a
    charset other than UTF-8 (it would be read as UTF-8 all the same)."""
    seen: set[bytes] = set()
    for name, value in scope["headers"]:
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            encoded = UnsupportedMediaType(
                _ENCODED_MESSAGE,
                errors=[ProblemError(loc=["header", "content-encoding"], msg=_ENCODED_MESSAGE)],
            )
            return encoded.problem(scope["path"])
        if name == b"content-type" and b";" in value and _foreign_charset(value):
            garbled = UnsupportedMediaType(
                _CHARSET_MESSAGE,
                errors=[ProblemError(loc=["header", "content-type"], msg=_CHARSET_MESSAGE)],
            )
            return garbled.problem(scope["path"])
        if name in SINGLE_HEADERS:
            if name in seen:
                refused = InvalidRequest.at(["header", SINGLE_HEADERS[name]], _REPEATED_MESSAGE)
                return refused.problem(scope["path"])
            seen.add(name)
    return None
