"""The one HTTP and retry layer every connector goes through.

Retry defaults follow hynek/stamina's `retry()`: only named transient errors are retried
(transport errors including a single request's timeout, 429, 5xx), with exponential
backoff and jitter, and both the number of attempts (`max_attempts`) and the total time
(`timeout_s`) are capped. `set_testing(True)` removes the waits for test suites. A first
attempt that succeeds costs no retry machinery: tenacity is built only after a transient
failure, and is handed that failure as its own first attempt.

Attempts are counted by the client that sends them: a `PartnerClient` counts every HTTP
request it sends (`requests_sent`, retries and polls included), whichever task sends it,
so whoever made the client for a fetch reads the count from it afterwards::

    async with PartnerClient(transport=..., context=household.context) as client:
        evidence = await connector.fetch(household, config, client)
    attempts = client.requests_sent

A fetch's client may carry its connector's `RetryBudget` (`PartnerClient`): every request
then counts as a call, and each retry must be granted by the budget first; a refused retry
is not sent and the last attempt's failure surfaces at once. A retry goes out tagged with
a `Retry` request extension (`RETRY_EXTENSION`): which attempt it is and why, so whoever
counts requests at the transport tells retries apart from first requests and polls.

Every request about a household says why it is made: the client a fetch is handed
(`PartnerClient`, built with the household's `RequestContext`) adds `X-Hedui-Consent-Id`
and `X-Hedui-Purpose` to each request it sends, whether the connector goes through
`request` or calls the client itself, so no connector can forget them. A request that is
not about anyone (an OAuth token request, a health check) is sent with `about_people=False`
and carries neither: an access token is shared by the fetches of many households.

Every answer is read as a stream and refused (`ResponseTooLarge`) as soon as it exceeds
`max_response_bytes`: a partner cannot make hedui hold more than that per request. A body
larger than `INLINE_PARSE_BYTES` is parsed in a worker thread, so parsing a few megabytes
never holds up the event loop (and the time budget can still end the wait for it).
"""

import asyncio
import json as jsonlib
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from httpx import USE_CLIENT_DEFAULT
from httpx._client import ClientState, UseClientDefault
from httpx._types import AuthTypes
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from connectors.base import (
    ConnectorConfig,
    ConnectorError,
    MalformedResponse,
    PartnerRejected,
    PartnerTimeout,
    PartnerUnavailable,
    ResponseTooLarge,
)
from connectors.retry_budget import RetryBudget
from connectors.retrying import retried_after_first
from connectors.wire import partner_error_code
from schemas.evidence import RequestContext

A = TypeVar("A")
T = TypeVar("T")

WAIT_INITIAL_S = 0.05
WAIT_MAX_S = 1.0
WAIT_JITTER_S = 0.05
MAX_RETRY_AFTER_S = 30.0
INLINE_PARSE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (well under a millisecond)."""
ERROR_BODY_BYTES = 16 * 1024
ACCEPT_ENCODING = "gzip, deflate"
"""The encodings `_read` can inflate within its limit (asked for explicitly: httpx would also
offer brotli or zstd whenever their packages happen to be installed)."""
"""How much of an error answer is read to find the partner's error code."""

# When the current fetch must be finished, on the event loop's clock; None outside a fetch.
_deadline_var: ContextVar[float | None] = ContextVar("hedui_connector_deadline", default=None)

RETRY_EXTENSION = "hedui.retry"
"""The httpx request extension a retry carries: a `Retry`."""
IMPERSONAL_EXTENSION = "hedui.impersonal"
"""The httpx request extension of a request about nobody (True): no consent headers."""
CONSENT_HEADER = "X-Hedui-Consent-Id"
"""The consent document (授权书) that allows a request about a household."""
PURPOSE_HEADER = "X-Hedui-Purpose"
"""What a request about a household is for: the verification's program (`dibao`, ...)."""
CONTEXT_HEADERS = (CONSENT_HEADER, PURPOSE_HEADER)


def context_headers(context: RequestContext) -> dict[str, str]:
    """The headers that carry `context` (its values are printable ASCII by construction)."""
    return {CONSENT_HEADER: context.consent_id, PURPOSE_HEADER: context.purpose}


_testing = False
_httpx_log = logging.getLogger("httpx")


@dataclass(frozen=True, slots=True)
class Retry:
    """What a retried request carries: its attempt number (2 for the first retry) and the
    class of failure that caused it (`timeout`, `transport_error`, `http_429`, `http_5xx`);
    never anything of the request itself."""

    attempt: int
    reason: str


USER_AGENT = "hedui/0.1"
"""What every partner request says it comes from."""


class PartnerClient(httpx.AsyncClient):
    """The client one fetch is handed: an `httpx.AsyncClient` that also carries its
    connector's retry budget, which `request` consults before every retry, and the
    household's `RequestContext`, which every request it sends carries as headers
    (unless marked with `IMPERSONAL_EXTENSION`)."""

    def __init__(
        self,
        *,
        retry_budget: RetryBudget | None = None,
        context: RequestContext | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "headers" not in kwargs:
            # Partners see who calls (httpx's own would say `python-httpx`).
            self.headers["User-Agent"] = USER_AGENT
        self._own(retry_budget, context)

    def _own(self, retry_budget: RetryBudget | None, context: RequestContext | None) -> None:
        """What is this client's alone, built or forked: its budget, context, count, jar."""
        self.retry_budget = retry_budget
        self.context = context
        self._context_headers = context_headers(context) if context is not None else None
        self._context_items: list[tuple[bytes, bytes, bytes]] | None = None
        """`_context_headers` as httpx's `Headers` holds them, made at the first request."""
        self.requests_sent = 0
        """HTTP requests sent through this client so far (retries and polls included)."""
        self.retry_wait_s = 0.0
        """Seconds its requests slept between a failed attempt and its retry (the backoff,
        or a partner's `Retry-After`): hedui's waiting, not the partner's time."""
        # Partners are APIs, not browsers: a cookie one sets is never sent back, and no
        # answer pays for being read into a cookie jar.
        self._cookies = NoCookies()

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        # Every request goes out through here (`request`, `stream`, `get`, `post`, and a
        # request the connector built itself): the one place the context is added, after
        # whatever the connector set, so a header it names the same cannot replace it.
        if request.extensions.get(IMPERSONAL_EXTENSION):
            _replace_context_headers(request.headers, [])
        elif self._context_headers is not None:
            if self._context_items is None:
                self._context_items = [
                    (name.encode(), name.lower().encode(), value.encode())
                    for name, value in self._context_headers.items()
                ]
            _replace_context_headers(request.headers, self._context_items)
        self.requests_sent += 1
        if self._is_plain(request, auth, follow_redirects):
            return await self._send_plain(request, stream=stream)
        return await super().send(
            request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: Any = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        cookies: Any = None,
        timeout: Any = USE_CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx.Request:
        """httpx's `build_request`, built directly for what connectors send: an absolute
        URL (parsed once, `_url`) with or without query parameters, a body of bytes, JSON
        or a form of text fields, or none, headers as a mapping of ASCII text. httpx's own
        merges the client's headers into a new `Headers`, then looks each automatic
        header up in it one by one: two fifths of what a partner call cost above a bare
        aiohttp client (bench/transport.py). The request is the same, header for header
        in the same order (`tests/connectors/test_build_request.py`); anything else
        (cookies, files, other form values, a relative URL, a non-ASCII header) goes to
        httpx's own."""
        target = _url(url) if isinstance(url, str) else url
        bodies = (content is not None) + bool(data) + (json is not None)
        raw = None
        if (
            files is None
            and cookies is None
            and not self._cookies
            and not self.params
            and bodies <= 1
            and (data is None or _is_text_form(data))
            and (content is None or isinstance(content, bytes))
            and isinstance(target, httpx.URL)
            and target.is_absolute_url
            and (headers is None or isinstance(headers, Mapping))
        ):
            if data:
                body: bytes | None = urlencode(list(data.items()), doseq=True).encode()
                kind: bytes | None = b"application/x-www-form-urlencoded"
            elif json is not None:
                body, kind = _json_body(json), b"application/json"
            else:
                body, kind = content, None
            # None when a header is one httpx would encode in its own way.
            raw = _merged_headers(self._headers._list, headers or {}, target, method, body, kind)
        if raw is None:
            return super().build_request(
                method,
                url,
                content=content,
                data=data,
                files=files,
                json=json,
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=timeout,
                extensions=extensions,
            )
        if params is not None:
            target = _with_params(target, params)
        extensions = {} if extensions is None else dict(extensions)
        if "timeout" not in extensions:
            extensions["timeout"] = (
                self.timeout.as_dict()
                if isinstance(timeout, UseClientDefault)
                else _timeout(timeout)
            )
        # What `httpx.Request(method, target, headers=..., stream=...)` and its `read()`
        # set, without copying the URL (immutable) and the headers made for it (2.8 µs of
        # 3.7; `test_build_request` holds the attributes to httpx's own).
        request = object.__new__(httpx.Request)
        request.method = method.upper()
        request.url = target
        request.headers = headers_of(raw)
        request.extensions = extensions
        request.stream = httpx.ByteStream(body or b"")
        request._content = body or b""  # the body is in memory: read, as httpx's own says
        return request

    def _is_plain(
        self,
        request: httpx.Request,
        auth: AuthTypes | UseClientDefault | None,
        follow_redirects: bool | UseClientDefault,
    ) -> bool:
        """No authentication flow, no redirect to follow, no event hook: all that httpx's
        own `send` would add is generators and wrappers around the transport's answer
        (about a tenth of a partner call's CPU)."""
        follow = (
            self.follow_redirects
            if isinstance(follow_redirects, UseClientDefault)
            else follow_redirects
        )
        return (
            not follow
            and (auth is None or (isinstance(auth, UseClientDefault) and self._auth is None))
            and not request.url.userinfo
            and not self._event_hooks["request"]
            and not self._event_hooks["response"]
        )

    async def _send_plain(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        """httpx's `send` without auth, redirects or hooks: the transport's answer as is."""
        if self._state is ClientState.CLOSED:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        self._state = ClientState.OPENED
        response = await self._transport_for_url(request.url).handle_async_request(request)
        response.request = request
        response.default_encoding = self._default_encoding
        if _httpx_log.isEnabledFor(logging.INFO):  # httpx's own line (DEBUG in hedui)
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    def fork(
        self,
        *,
        transport: httpx.AsyncBaseTransport,
        retry_budget: RetryBudget | None = None,
        context: RequestContext | None = None,
    ) -> "PartnerClient":
        """A client with this one's settings (headers, timeout, redirects, hooks), its own
        `transport`, retry budget and context, and no requests sent yet: what one fetch is
        handed. Copying a template is 30 times cheaper than building an `httpx.AsyncClient`
        (about 1 µs against 27), and every fetch of every household builds one.

        What a connector may change on its client (headers, event hooks) is its own copy;
        the rest of httpx's state is immutable or replaced here."""
        client = object.__new__(PartnerClient)
        client.__dict__.update(self.__dict__)
        client._transport = transport
        client._mounts = {}
        client._headers = self._headers.copy()
        client._event_hooks = {name: list(hooks) for name, hooks in self._event_hooks.items()}
        client._state = ClientState.UNOPENED
        client._own(retry_budget, context)
        return client


_CONTEXT_KEYS = frozenset(name.lower().encode() for name in CONTEXT_HEADERS)


def _replace_context_headers(
    headers: httpx.Headers, items: list[tuple[bytes, bytes, bytes]]
) -> None:
    """`headers` without any context header, then with `items` at the end: what
    `headers.update(context_headers(...))` (or a `pop` of each name) does, on httpx's own
    list of (name, lowercased name, value), without building a second `Headers` and
    decoding every name twice to compare them (13 µs of a partner request's 14)."""
    headers._list = [item for item in headers._list if item[1] not in _CONTEXT_KEYS] + items


class NoCookies(httpx.Cookies):
    """A cookie jar that stays empty."""

    def __bool__(self) -> bool:
        # httpx's walks the jar, asked at every request built; this one is empty unless a
        # connector set a cookie on its client itself (then True, or True with nothing
        # left after a `clear`: httpx's own `build_request` is used then, all the same).
        return bool(self.jar._cookies)  # type: ignore[attr-defined]

    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


def set_testing(enabled: bool) -> None:
    """Process-wide: retry without waiting between attempts (attempt caps still apply)."""
    global _testing  # noqa: PLW0603 - a deliberate process-wide switch, as in stamina
    _testing = enabled


def is_testing() -> bool:
    return _testing


_backoff = wait_exponential_jitter(multiplier=WAIT_INITIAL_S, max=WAIT_MAX_S, jitter=WAIT_JITTER_S)


def _wait(state: RetryCallState) -> float:
    # Read at every retry, so flipping the switch affects retry loops already running.
    if _testing:
        return 0.0
    error = state.outcome.exception() if state.outcome else None
    asked = getattr(error, "retry_after_s", None) or 0.0
    # A partner that says when to come back is believed (the deadline still caps it).
    return max(_backoff(state), min(asked, MAX_RETRY_AFTER_S))


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, ConnectorError) and error.transient


def _stop(
    config: ConnectorConfig, retry_budget: RetryBudget | None, granted: list[Retry]
) -> Callable[[RetryCallState], bool]:
    loop = asyncio.get_running_loop()
    deadline = _deadline_var.get()
    if deadline is None:  # a lone request outside `budget`: its own retries get the budget
        deadline = loop.time() + config.timeout_s

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= config.max_attempts:
            return True
        # Give up now rather than sleep into a deadline that would cut the next attempt short:
        # the caller then sees the partner's real error instead of a bare timeout.
        if loop.time() + state.upcoming_sleep >= deadline:
            return True
        # Asked last, so that a retry taken from the budget is a retry really sent.
        if retry_budget is not None and not retry_budget.try_retry():
            return True
        error = state.outcome.exception() if state.outcome else None
        granted.append(Retry(state.attempt_number + 1, retry_reason(error)))
        return False

    return stop


def retry_reason(error: BaseException | None) -> str:
    """The class of a transient failure, as retries are labelled: no detail of the request."""
    if isinstance(error, PartnerUnavailable) and error.reason:
        return error.reason
    return "unavailable"


@asynccontextmanager
async def budget(config: ConnectorConfig) -> AsyncIterator[None]:
    """Bound everything inside (requests, retries, polling) by `config.timeout_s`."""
    loop = asyncio.get_running_loop()
    token = _deadline_var.set(loop.time() + config.timeout_s)
    timeout = asyncio.timeout(config.timeout_s)
    try:
        async with timeout:
            yield
    except TimeoutError:
        if not timeout.expired():
            raise
        raise PartnerTimeout(f"no complete answer within {config.timeout_s:g} s") from None
    finally:
        _deadline_var.reset(token)


async def request(
    client: httpx.AsyncClient,
    config: ConnectorConfig,
    method: str,
    path: str,
    parse: Callable[[bytes], T],
    *,
    on_error_status: Callable[[int, bytes], T | None] | None = None,
    url: str | None = None,
    pace: Callable[[], Awaitable[None]] | None = None,
    about_people: bool = True,
    **kwargs: Any,
) -> T:
    """Send `method {base_url}{path}`, retrying transient failures, and parse the answer.

    `parse` turns a 2xx body into the partner's wire model (or the records made of it) and
    raises `MalformedResponse` when the body does not follow the documented format; it runs
    inside the retry loop and is retried only when it raises a transient error itself. It
    must be a pure function of the body: a large body is parsed in a worker thread.

    `on_error_status` reads a non-2xx answer (status, first bytes of the body) first: it
    may raise a `ConnectorError` of its choice or return a result; None leaves the usual
    mapping (429 and 5xx transient, other 4xx rejected). `url` replaces base_url + path.
    `pace` is awaited before every attempt (a rate limit's wait). `about_people=False`
    sends it without the consent headers (a token request: it is about nobody).
    """
    retry_budget = client.retry_budget if isinstance(client, PartnerClient) else None
    granted: list[Retry] = []
    target = _url(url or f"{config.base_url}{path}")
    if retry_budget is not None:
        retry_budget.record_call()

    async def attempt() -> T:
        if pace is not None:
            await pace()
        extensions: dict[str, object] | None = {RETRY_EXTENSION: granted[-1]} if granted else None
        if not about_people:
            extensions = {**(extensions or {}), IMPERSONAL_EXTENSION: True}
        answer = await _send(client, config, method, target, extensions=extensions, **kwargs)
        if isinstance(answer, _ErrorAnswer):
            result = on_error_status(answer.status, answer.body) if on_error_status else None
            if result is not None:
                return result
            raise answer.error
        if len(answer) <= INLINE_PARSE_BYTES:
            return parse(answer)
        return await asyncio.to_thread(parse, answer)

    # The first attempt costs no retry machinery: almost every call succeeds at once.
    return await retried_after_first(
        attempt,
        retryable=_is_transient,
        retrying=lambda: AsyncRetrying(
            sleep=_counted_sleep(client),
            stop=_stop(config, retry_budget, granted),
            wait=_wait,
            retry=retry_if_exception(_is_transient),
            reraise=True,
        ),
    )


def _counted_sleep(client: httpx.AsyncClient) -> Callable[[float], Awaitable[None]]:
    """The retry layer's sleep for `client`'s requests: counted on a `PartnerClient`
    (`retry_wait_s`), so the fetch can leave it out of the partner's latency."""

    async def sleep(seconds: float) -> None:
        if isinstance(client, PartnerClient):
            client.retry_wait_s += seconds
        await asyncio.sleep(seconds)

    return sleep


@lru_cache(maxsize=1024)
def _url(url: str) -> httpx.URL:
    """A partner URL parsed once: connectors ask the same few endpoints again and again.

    (httpx URLs are immutable; a request built from one copies nothing of it.)"""
    return httpx.URL(url)


def _with_params(url: httpx.URL, params: Any) -> httpx.URL:
    """`url` with `params` as its query, as httpx makes it. The same few (a first page's
    size) are made once: httpx parses the whole URL again for them (44 µs a page, 3.6 from
    the cache). Only text or integer values are cached: their equality fixes their query
    text (`50.0 == 50` and `True == 1`, yet each is written differently)."""
    if isinstance(params, dict) and all(
        type(value) is str or type(value) is int for value in params.values()
    ):
        return _with_query(str(url), tuple(params.items()))
    return httpx.URL(url, params=params)


@lru_cache(maxsize=256)
def _with_query(url: str, params: tuple[tuple[str, str | int], ...]) -> httpx.URL:
    return httpx.URL(_url(url), params=dict(params))


_JSON = jsonlib.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""What `json.dumps` with httpx's arguments builds anew for every call."""


def _json_body(value: Any) -> bytes:
    """A JSON body as httpx encodes one."""
    return _JSON.encode(value).encode()


@lru_cache(maxsize=64)
def _timeout_of(timeout: float | None) -> tuple[tuple[str, float | None], ...]:
    return tuple(httpx.Timeout(timeout).as_dict().items())


def _timeout(timeout: Any) -> dict[str, float | None]:
    """A request's timeout extension, as httpx makes it (`Timeout(timeout).as_dict()`)."""
    if isinstance(timeout, int | float) or timeout is None:
        return dict(_timeout_of(timeout))
    return httpx.Timeout(timeout).as_dict()


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_text_form(data: Any) -> bool:
    """Form data whose fields are all text, as connectors send it."""
    return isinstance(data, Mapping) and all(
        isinstance(name, str) and isinstance(value, str) for name, value in data.items()
    )


def _merged_headers(
    defaults: list[tuple[bytes, bytes, bytes]],
    given: Mapping[str, str],
    url: httpx.URL,
    method: str,
    content: bytes | None,
    content_type: bytes | None,
) -> list[tuple[bytes, bytes, bytes]] | None:
    """The headers httpx's `build_request` gives a request, in its order: Host, the
    client's that none given replaces, the given ones, then Content-Length and
    Content-Type unless given; as httpx's `Headers` holds them (name, lowercased name,
    value). None when a given name or value is not ASCII text (httpx's own then decides
    what to do with it)."""
    added: list[tuple[bytes, bytes, bytes]] = []
    for name, value in given.items():
        if not isinstance(name, str) or not isinstance(value, str):
            return None
        if not (name.isascii() and value.isascii()):
            return None
        key = name.encode()
        added.append((key, key.lower(), value.encode()))
    replaced = {lower for _, lower, _ in added}
    merged = [item for item in defaults if item[1] not in replaced] + added
    names = {lower for _, lower, _ in merged}
    if content:
        if b"content-length" not in names:
            merged.append((b"Content-Length", b"content-length", str(len(content)).encode()))
            names.add(b"content-length")
        if content_type is not None and b"content-type" not in names:
            merged.append((b"Content-Type", b"content-type", content_type))
    auto: list[tuple[bytes, bytes, bytes]] = []
    if b"host" not in names and url.host:
        auto.append((b"Host", b"host", url.netloc))
    if (
        b"content-length" not in names
        and b"transfer-encoding" not in names
        and method.upper() in _BODY_METHODS
    ):
        auto.append((b"Content-Length", b"content-length", b"0"))
    return auto + merged


def headers_of(items: list[tuple[bytes, bytes, bytes]]) -> httpx.Headers:
    """httpx `Headers` holding `items` as they are: names and values already bytes, each
    name with its lowercased form (what `Headers(...)` would make of them, 0.6 µs a
    header less). The one place a `Headers` is filled through httpx's internal list:
    the requests built here and the answers of the partner transport."""
    headers = httpx.Headers()
    headers._list = items
    return headers


@dataclass(frozen=True, slots=True)
class _ErrorAnswer:
    status: int
    body: bytes
    error: ConnectorError
    """What the answer means when the caller has no reading of its own."""


async def _send(
    client: httpx.AsyncClient,
    config: ConnectorConfig,
    method: str,
    url: httpx.URL | str,
    **kwargs: Any,
) -> bytes | _ErrorAnswer:
    """One attempt: the request with its own timeout; its body, or its error status."""
    headers = {"Accept-Encoding": ACCEPT_ENCODING, **(kwargs.pop("headers", None) or {})}
    # `client.stream(...)` as httpx writes it, without its generator-based context manager.
    auth = kwargs.pop("auth", USE_CLIENT_DEFAULT)
    follow_redirects = kwargs.pop("follow_redirects", USE_CLIENT_DEFAULT)
    try:
        request = client.build_request(
            method, url, timeout=config.request_timeout_s, headers=headers, **kwargs
        )
        response = await client.send(
            request, auth=auth, follow_redirects=follow_redirects, stream=True
        )
        try:
            if 200 <= response.status_code < 300:
                return await _read(response, config.max_response_bytes)
            body = await _read(response, ERROR_BODY_BYTES, truncate=True)
            return _ErrorAnswer(response.status_code, body, _status_error(response, body))
        finally:
            await response.aclose()
    except httpx.TimeoutException as error:
        raise PartnerUnavailable(
            f"no answer within {config.request_timeout_s:g} s ({type(error).__name__})",
            reason="timeout",
        ) from None
    except httpx.TransportError as error:
        raise PartnerUnavailable(_transport_problem(error), reason="transport_error") from None
    except httpx.DecodingError:
        raise MalformedResponse("body could not be decoded") from None


_TRANSPORT_PROBLEMS: tuple[tuple[type[httpx.TransportError], str], ...] = (
    (httpx.ConnectError, "could not connect to {host}"),
    (
        httpx.RemoteProtocolError,
        "{host} closed the connection before a whole answer, or "
        "answered something that is not HTTP",
    ),
    (httpx.ReadError, "the connection to {host} broke while the answer was read"),
    (httpx.WriteError, "the connection to {host} broke while the request was sent"),
    (httpx.UnsupportedProtocol, "the URL's scheme is not http or https"),
)


def _transport_problem(error: httpx.TransportError) -> str:
    """What went wrong, for a person reading a report or a test read: the partner's host and
    port, never the URL (httpx's own message quotes it, and a path or a query may hold what
    the partner was asked about)."""
    said = f"transport error ({type(error).__name__})"
    try:
        url = error.request.url
    except RuntimeError:  # raised without its request
        return said
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    host = f"{url.host}:{port}" if port else url.host or "the partner"
    for kind, problem in _TRANSPORT_PROBLEMS:
        if isinstance(error, kind):
            return f"transport error: {problem.format(host=host)} ({type(error).__name__})"
    return said


async def _read(response: httpx.Response, limit: int, *, truncate: bool = False) -> bytes:
    """The decoded body, chunk by chunk, never more than `limit` bytes of it.

    Beyond `limit`: the first `limit` bytes when `truncate`, else `ResponseTooLarge` at once
    (the rest is never read; closing the stream drops the connection). A compressed body is
    inflated here, a bounded piece at a time: a small gzip bomb never becomes a large buffer.
    """
    framing = _Framing.of(response.headers)
    declared = framing.length
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge.over_bytes(limit)
    whole = await _read_whole(response, framing, limit)
    if whole is not None:
        return whole
    if response.is_stream_consumed:  # built in memory, by a test double: decoded already
        raws, inflater = _once(response.content), None
    else:
        raws, inflater = response.aiter_raw(), _inflater(framing.encoding or "")
    body = bytearray()
    try:
        async for raw in raws:
            pending = raw
            while pending:
                if inflater is None:
                    body += pending
                    pending = b""
                else:  # at most one byte past the limit, the rest kept for later
                    body += inflater.decompress(pending, limit + 1 - len(body))
                    pending = inflater.unconsumed_tail
                if len(body) > limit:
                    if truncate:
                        return bytes(body[:limit])
                    raise ResponseTooLarge.over_bytes(limit)
    except zlib.error:
        raise MalformedResponse("body could not be decoded") from None
    return bytes(body)


@dataclass(frozen=True, slots=True)
class _Framing:
    """The headers that say how a body is framed and encoded, as `headers.get` gives them
    (several values joined by ", "), found in one pass over the headers: each `get` or
    `in` of httpx's decodes every header name again (5 µs a response for the three)."""

    length: str
    """Content-Length, "" when absent."""
    encoding: str | None
    """Content-Encoding, None when absent."""
    chunked: bool
    """A Transfer-Encoding header is present."""

    @classmethod
    def of(cls, headers: httpx.Headers) -> "_Framing":
        lengths: list[bytes] = []
        encodings: list[bytes] = []
        chunked = False
        for _, key, value in headers._list:
            if key == b"content-length":
                lengths.append(value)
            elif key == b"content-encoding":
                encodings.append(value)
            elif key == b"transfer-encoding":
                chunked = True
        return cls(
            _joined(headers, lengths), _joined(headers, encodings) if encodings else None, chunked
        )


def _joined(headers: httpx.Headers, values: list[bytes]) -> str:
    """`values` decoded and joined as `headers.get` does (ASCII, the usual case, needs no
    look at the other headers for their encoding)."""
    return ", ".join(
        value.decode("ascii") if value.isascii() else value.decode(headers.encoding)
        for value in values
    )


async def _read_whole(response: httpx.Response, framing: _Framing, limit: int) -> bytes | None:
    """A body framed by its declared length, not compressed, from a transport that reads
    it in one call: read so, without a chunk iterator per layer (the HTTP parser reads no
    further than that length). None when the body must be read chunk by chunk."""
    stream, declared = response.stream, framing.length
    if not (
        isinstance(stream, WholeBody)
        and declared.isdigit()
        and int(declared) <= limit
        and not framing.chunked
        and (framing.encoding is None or framing.encoding.strip().lower() == "identity")
    ):
        return None
    whole = await stream.read_whole()
    if whole is not None and len(whole) > limit:  # pragma: no cover - the parser stops there
        raise ResponseTooLarge.over_bytes(limit)
    return whole


class WholeBody(httpx.AsyncByteStream):
    """A response body that may also be read in one call, when its headers declare its
    length: from a transport whose HTTP parser reads no further than that length."""

    async def read_whole(self) -> bytes | None:
        """The whole body, or None when it can only be read chunk by chunk (nothing read)."""
        return None


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


def _inflater(encoding: str) -> "zlib._Decompress | None":
    """A zlib decompressor for the body's `Content-Encoding`; None when it is not encoded."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # a gzip or zlib header, either
    raise MalformedResponse("body has an unsupported content encoding")


def _status_error(response: httpx.Response, body: bytes) -> ConnectorError:
    status = response.status_code
    # Only the partner's short error code is quoted: its free text may name a person.
    code = partner_error_code(body)
    detail = f"HTTP {status}" + (f" (partner code {code})" if code else "")
    if status == 429 or status >= 500:
        reason = "http_429" if status == 429 else "http_5xx"
        return PartnerUnavailable(detail, retry_after_s=_retry_after(response), reason=reason)
    if 400 <= status < 500:
        return PartnerRejected(detail)
    return MalformedResponse(f"unexpected {detail}")


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds; the HTTP-date form is rare among partners and ignored."""
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


async def map_concurrently(
    call: Callable[[A], Awaitable[T]], items: Iterable[A], *, limit: int = 10
) -> list[T]:
    """`call` each item concurrently (at most `limit` at a time); results in item order.

    The first connector error wins and cancels the rest. Calls are made inside their tasks,
    so a call cancelled before its turn is never even created.
    """
    items = list(items)
    if len(items) == 1:
        # Most households fit one batch: the same call, its error as it came, without a
        # task group (a fifth of a small fetch's own cost).
        return [await call(items[0])]
    semaphore = asyncio.Semaphore(limit)

    async def run(item: A) -> T:
        async with semaphore:
            return await call(item)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(item)) for item in items]
    except ExceptionGroup as failures:
        # Callers handle single errors (a ValidationError becomes MalformedResponse upstream);
        # a partner error explains the failure better than whatever it cancelled.
        leaves = _leaves(failures)
        first = next((e for e in leaves if isinstance(e, ConnectorError)), leaves[0])
        raise first from None
    return [task.result() for task in tasks]


def _leaves(group: BaseExceptionGroup[Exception]) -> list[Exception]:
    leaves: list[Exception] = []
    for error in group.exceptions:
        leaves += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return leaves
