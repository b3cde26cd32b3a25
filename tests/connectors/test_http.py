"""The shared HTTP and retry layer: which errors are retried, how long, and how it is counted."""

import asyncio
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from connectors import http as http_module
from connectors.base import (
    ConnectorConfig,
    MalformedResponse,
    PartnerRejected,
    PartnerTimeout,
    PartnerUnavailable,
    ResponseTooLarge,
)
from connectors.http import (
    INLINE_PARSE_BYTES,
    PartnerClient,
    _Framing,
    budget,
    map_concurrently,
    request,
)
from connectors.testing import retry_testing
from connectors.wire import describe, load_json, parse_xml, partner_error_code, safe_code
from schemas.evidence import RequestContext
from schemas.identity import check_character
from tests.conftest import CLIENT_TLS
from tests.loopback import loopback_server

BASE = "https://partner.test/x"
CONTEXT = RequestContext(consent_id="consent-1", purpose="dibao")


def config(**values: object) -> ConnectorConfig:
    return ConnectorConfig.model_validate({"base_url": BASE, **values})


def answers(*responses: httpx.Response | type[Exception]) -> PartnerClient:
    """A client whose successive requests get `responses` (the last one repeats)."""
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, type):
            raise answer("injected")
        return answer

    return PartnerClient(transport=httpx.MockTransport(handle))


def text(body: bytes) -> str:
    return body.decode()


async def send(client: PartnerClient, cfg: ConnectorConfig | None = None) -> tuple[str, int]:
    """`request` once, with the attempts it took."""
    before = client.requests_sent
    body = await request(client, cfg or config(), "GET", "/ping", text)
    return body, client.requests_sent - before


async def attempts_of(client: PartnerClient, cfg: ConnectorConfig | None = None) -> int:
    before = client.requests_sent
    with suppress(PartnerUnavailable, PartnerRejected, MalformedResponse):
        await request(client, cfg or config(), "GET", "/ping", text)
    return client.requests_sent - before


class TestStatusMapping:
    @pytest.mark.parametrize("code", [200, 201, 202, 204])
    async def test_2xx_is_an_answer(self, code: int) -> None:
        async with answers(httpx.Response(code, text="ok" if code != 204 else "")) as client:
            _, attempts = await send(client)
        assert attempts == 1

    @pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422])
    async def test_4xx_is_rejected_once(self, code: int) -> None:
        async with answers(httpx.Response(code)) as client:
            with pytest.raises(PartnerRejected, match=f"HTTP {code}"):
                await send(client)
            assert await attempts_of(client) == 1

    @pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
    async def test_429_and_5xx_are_retried_up_to_max_attempts(self, code: int) -> None:
        async with answers(httpx.Response(code)) as client:
            with pytest.raises(PartnerUnavailable, match=f"HTTP {code}"):
                await send(client, config(max_attempts=4))
            assert await attempts_of(client, config(max_attempts=4)) == 4

    async def test_3xx_is_malformed(self) -> None:
        async with answers(httpx.Response(302, headers={"Location": "/elsewhere"})) as client:
            with pytest.raises(MalformedResponse, match="HTTP 302"):
                await send(client)

    @pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadError, httpx.ConnectTimeout])
    async def test_transport_errors_are_retried(self, error: type[Exception]) -> None:
        async with answers(error, httpx.Response(200, text="ok")) as client:
            body, attempts = await send(client)
        assert (body, attempts) == ("ok", 2)

    async def test_a_parse_failure_is_never_retried(self) -> None:
        def refuse(body: bytes) -> str:
            raise MalformedResponse("bad")

        async with answers(httpx.Response(200, text="?")) as client:
            with pytest.raises(MalformedResponse):
                await request(client, config(), "GET", "/ping", refuse)
            assert client.requests_sent == 1


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A loopback server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    async with loopback_server(accept) as url:
        try:
            yield url
        finally:
            for writer in held:
                writer.close()


class TestRealTimeouts:
    async def test_per_request_timeout_reaches_the_transport(self) -> None:
        async with silent_server() as url, PartnerClient() as client:
            cfg = ConnectorConfig(base_url=url, request_timeout_s=0.05, max_attempts=2)
            started = time.perf_counter()
            with pytest.raises(
                PartnerUnavailable, match=r"no answer within 0.05 s \(ReadTimeout\)"
            ):
                await request(client, cfg, "GET", "/ping", text)
            assert client.requests_sent == 2
            assert time.perf_counter() - started < 1

    async def test_refused_connection_is_unavailable(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        async with httpx.AsyncClient(verify=CLIENT_TLS) as client:
            cfg = ConnectorConfig(base_url=f"http://127.0.0.1:{port}", max_attempts=2)
            with pytest.raises(PartnerUnavailable, match="ConnectError") as refused:
                await request(client, cfg, "GET", "/ping?id=530102199001011231", text)
        # Where it could not connect, for a person to act on; never the path or the query.
        assert f"could not connect to 127.0.0.1:{port}" in str(refused.value)
        assert "ping" not in str(refused.value)
        assert "530102" not in str(refused.value)


async def chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    """`total` bytes in `size` chunks, as a streamed body without Content-Length."""
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


class Streamed(httpx.AsyncByteStream):
    """A response body produced chunk by chunk, recording how much was asked of it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.produced = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in chunks(self.total):
            self.produced += len(chunk)
            yield chunk


class Raw(httpx.AsyncByteStream):
    """A body as it comes off the wire (still compressed), in 16 KiB pieces."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.content), 16 * 1024):
            yield self.content[start : start + 16 * 1024]


class TestResponseLimits:
    async def test_a_body_at_the_limit_is_read(self) -> None:
        async with answers(httpx.Response(200, content=b"x" * 2048)) as client:
            body, _ = await send(client, config(max_response_bytes=2048))
        assert len(body) == 2048

    async def test_a_declared_length_over_the_limit_is_refused_before_reading(self) -> None:
        stream = Streamed(10_000)
        response = httpx.Response(200, headers={"Content-Length": "10000"}, stream=stream)
        async with answers(response) as client:
            with pytest.raises(ResponseTooLarge, match=r"response too large \(over 2048 bytes\)"):
                await send(client, config(max_response_bytes=2048))
        assert stream.produced == 0

    async def test_a_streamed_body_is_cut_off_just_past_the_limit(self) -> None:
        stream = Streamed(10 * 1024 * 1024)
        async with answers(httpx.Response(200, stream=stream)) as client:
            with pytest.raises(ResponseTooLarge):
                await send(client, config(max_response_bytes=4096))
        assert stream.produced <= 4096 + 1024

    async def test_too_large_is_not_retried(self) -> None:
        async with answers(httpx.Response(200, content=b"x" * 4096)) as client:
            with pytest.raises(ResponseTooLarge):
                await request(client, config(max_response_bytes=1024), "GET", "/ping", text)
            assert client.requests_sent == 1

    async def test_an_error_body_is_read_only_in_part(self) -> None:
        stream = Streamed(10 * 1024 * 1024)
        async with answers(httpx.Response(503, stream=stream)) as client:
            with pytest.raises(PartnerUnavailable, match="HTTP 503"):
                await send(client, config(max_attempts=1))
        assert stream.produced <= 16 * 1024 + 1024

    async def test_a_gzip_bomb_is_refused_without_inflating_it(self) -> None:
        """50 MB of zeros in 50 KB of gzip: refused with little more than the limit inflated."""
        packer = zlib.compressobj(wbits=31)
        bomb = b"".join(packer.compress(bytes(1024 * 1024)) for _ in range(50)) + packer.flush()
        response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Raw(bomb))
        async with answers(response) as client:
            tracemalloc.start()
            try:
                with pytest.raises(ResponseTooLarge):
                    await send(client, config(max_response_bytes=1024 * 1024))
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert peak < 8 * 1024 * 1024

    @pytest.mark.parametrize("wbits", [31, 15], ids=["gzip", "deflate"])
    async def test_a_compressed_body_within_the_limit_is_inflated(self, wbits: int) -> None:
        packer = zlib.compressobj(wbits=wbits)
        packed = packer.compress(b"ok" * 1000) + packer.flush()
        encoding = "gzip" if wbits == 31 else "deflate"
        headers = {"Content-Encoding": encoding}
        response = httpx.Response(200, headers=headers, stream=Raw(packed))
        async with answers(response) as client:
            body, _ = await send(client)
        assert body == "ok" * 1000

    async def test_an_unknown_encoding_or_a_corrupt_body_is_malformed(self) -> None:
        for encoding, content in (("br", b"\x0b\x00"), ("gzip", b"not gzip at all")):
            headers = {"Content-Encoding": encoding}
            response = httpx.Response(200, headers=headers, stream=Raw(content))
            async with answers(response) as client:
                with pytest.raises(MalformedResponse):
                    await send(client)

    async def test_only_encodings_it_can_bound_are_asked_for(self) -> None:
        seen: list[str] = []

        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers["Accept-Encoding"])
            return httpx.Response(200, text="ok")

        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
            await request(client, config(), "GET", "/ping", text)
        assert seen == ["gzip, deflate"]

    async def test_a_large_body_is_parsed_off_the_event_loop(self) -> None:
        threads: list[int] = []

        def where(body: bytes) -> int:
            threads.append(threading.get_ident())
            return len(body)

        for size in (INLINE_PARSE_BYTES, INLINE_PARSE_BYTES + 1):
            async with answers(httpx.Response(200, content=b"x" * size)) as client:
                await request(client, config(), "GET", "/ping", where)
        assert threads[0] == threading.get_ident()
        assert threads[1] != threading.get_ident()

    def test_limits_have_defaults_and_floors(self) -> None:
        assert config().max_response_bytes == 1024 * 1024
        assert config().max_records == 5_000
        with pytest.raises(ValidationError):
            config(max_response_bytes=10)
        with pytest.raises(ValidationError):
            config(max_records=0)


class TestWaits:
    async def test_retry_testing_removes_waits(self) -> None:
        async with answers(httpx.Response(503)) as client:
            started = time.perf_counter()
            with pytest.raises(PartnerUnavailable):
                await send(client, config(max_attempts=10))
        # Nine real backoffs would take over 5 s (0.05 s doubling up to 1 s each); the bound
        # leaves room for a loaded machine without letting a single real wait through.
        assert time.perf_counter() - started < 1.0

    async def test_backoff_starts_small_and_grows(self, monkeypatch: pytest.MonkeyPatch) -> None:
        waits: list[float] = []
        wait = http_module._wait

        def recorded(state: Any) -> float:
            waits.append(wait(state))
            return waits[-1]

        monkeypatch.setattr(http_module, "_wait", recorded)
        with retry_testing(False):
            async with answers(
                httpx.Response(503), httpx.Response(503), httpx.Response(200, text="ok")
            ) as client:
                started = time.perf_counter()
                _, attempts = await send(client)
        elapsed = time.perf_counter() - started
        assert attempts == 3
        # 0.05 s then 0.1 s, each plus up to 0.05 s of jitter, and really slept (the
        # waits asked for, not the wall clock's upper end, which a loaded machine moves).
        assert len(waits) == 2
        assert 0.05 <= waits[0] <= 0.1
        assert 0.1 <= waits[1] <= 0.15
        assert elapsed >= sum(waits)
        # The client that sent them says how long it slept between attempts (hedui's
        # waiting, which the partner's latency leaves out).
        assert client.retry_wait_s == pytest.approx(sum(waits))

    async def test_gives_up_rather_than_sleep_past_the_budget(self) -> None:
        with retry_testing(False):
            async with answers(httpx.Response(503)) as client:
                started = time.perf_counter()
                with pytest.raises(PartnerUnavailable, match="HTTP 503") as info:
                    await send(client, config(max_attempts=10, timeout_s=0.2))
        assert not isinstance(info.value, PartnerTimeout)
        assert time.perf_counter() - started < 0.2 + 0.05  # no sleep past the deadline

    async def test_retry_after_is_believed(self) -> None:
        busy = httpx.Response(503, headers={"Retry-After": "1"})
        with retry_testing(False):
            async with answers(busy, httpx.Response(200, text="ok")) as client:
                started = time.perf_counter()
                _, attempts = await send(client, config(timeout_s=3))
        assert attempts == 2
        assert time.perf_counter() - started >= 1.0

    async def test_retry_after_beyond_the_budget_gives_up_at_once(self) -> None:
        busy = httpx.Response(429, headers={"Retry-After": "5"})
        with retry_testing(False):
            async with answers(busy) as client:
                started = time.perf_counter()
                with pytest.raises(PartnerUnavailable, match="HTTP 429") as info:
                    await send(client, config(max_attempts=5, timeout_s=1))
        assert info.value.retry_after_s == 5
        assert time.perf_counter() - started < 0.5


class TestBudget:
    async def test_expiry_is_a_partner_timeout(self) -> None:
        with pytest.raises(PartnerTimeout, match=r"within 0\.05 s") as info:
            async with budget(config(timeout_s=0.05)):
                await asyncio.sleep(1)
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value, PartnerUnavailable)

    async def test_other_timeout_errors_pass_unchanged(self) -> None:
        with pytest.raises(TimeoutError) as info:
            async with budget(config(timeout_s=5)):
                raise TimeoutError("mine")
        assert not isinstance(info.value, PartnerTimeout)


class TestMapConcurrently:
    async def test_results_in_order_and_every_task_s_requests_counted(self) -> None:
        async with answers(httpx.Response(200, text="ok")) as client:

            async def call(n: int) -> int:
                for _ in range(n):
                    await request(client, config(), "GET", "/ping", text)
                await asyncio.sleep(0.01 * (3 - n))
                return n

            assert await map_concurrently(call, [1, 2, 3]) == [1, 2, 3]
            assert client.requests_sent == 6

    async def test_first_connector_error_is_raised_bare(self) -> None:
        async with answers(httpx.Response(400)) as client:

            async def call(fails: bool) -> None:
                if fails:
                    await request(client, config(), "GET", "/ping", text)
                await asyncio.sleep(1)

            with pytest.raises(PartnerRejected, match="HTTP 400"):
                await map_concurrently(call, [False, True])
            assert client.requests_sent == 1

    async def test_calls_waiting_their_turn_are_not_made_after_a_failure(self) -> None:
        made: list[int] = []

        async def call(n: int) -> None:
            made.append(n)
            await asyncio.sleep(0)
            raise PartnerRejected("HTTP 404")

        with pytest.raises(PartnerRejected):
            await map_concurrently(call, range(30), limit=3)
        assert len(made) < 30

    async def test_limit_bounds_concurrency(self) -> None:
        running = peak = 0

        async def call(_: int) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.005)
            running -= 1

        await map_concurrently(call, range(12), limit=3)
        assert peak == 3


class TestOneItem:
    async def test_one_item_is_called_as_is_and_its_error_comes_bare(self) -> None:
        """A single batch (most households) is called without a task group: the same
        result, and the same error as with several items."""
        assert await map_concurrently(lambda n: asyncio.sleep(0, n * 2), [21]) == [42]
        assert await map_concurrently(lambda n: asyncio.sleep(0, n), []) == []

        async def fails(_: int) -> None:
            raise PartnerRejected("HTTP 404")

        with pytest.raises(PartnerRejected, match="HTTP 404"):
            await map_concurrently(fails, iter([1]))


def recording(seen: list[httpx.Request], status: int = 200, **headers: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers=headers, text="ok")

    return httpx.MockTransport(handle)


class TestClient:
    """What every fetch's client does, whether httpx's own `send` runs or not."""

    async def test_forks_share_settings_but_not_headers_context_or_counts(self) -> None:
        seen: list[httpx.Request] = []
        template = PartnerClient(
            transport=recording([]), headers={"User-Agent": "hedui/test"}, timeout=7
        )
        first = template.fork(transport=recording(seen), context=CONTEXT)
        second = template.fork(transport=recording(seen))
        first.headers["X-Own"] = "1"
        async with first, second:
            await request(first, config(), "GET", "/a", text)
            await second.get(f"{BASE}/b")
        assert [r.headers.get("X-Own") for r in seen] == ["1", None]
        assert "X-Own" not in template.headers
        assert [r.headers["User-Agent"] for r in seen] == ["hedui/test"] * 2
        assert seen[0].headers["X-Hedui-Consent-Id"] == CONTEXT.consent_id
        assert "X-Hedui-Consent-Id" not in seen[1].headers
        assert (first.requests_sent, second.requests_sent, template.requests_sent) == (1, 1, 0)
        assert seen[1].extensions["timeout"]["read"] == 7
        assert first.is_closed
        assert not template.is_closed
        with pytest.raises(RuntimeError, match="closed"):
            await first.get(f"{BASE}/c")

    async def test_a_redirect_is_an_answer_not_followed(self) -> None:
        seen: list[httpx.Request] = []

        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if request.url.path == "/x/a":
                return httpx.Response(302, headers={"location": f"{BASE}/elsewhere"})
            return httpx.Response(200, text="there")

        async with PartnerClient(transport=httpx.MockTransport(handle)) as client:
            response = await client.get(f"{BASE}/a")
            assert response.status_code == 302
            followed = await client.get(f"{BASE}/a", follow_redirects=True)
            assert (followed.status_code, followed.text) == (200, "there")
        assert [r.url.path for r in seen] == ["/x/a", "/x/a", "/x/elsewhere"]

    async def test_hooks_and_auth_still_run_when_set(self) -> None:
        seen: list[httpx.Request] = []
        hooked: list[str] = []

        async def hook(request: httpx.Request) -> None:
            hooked.append(request.url.path)

        async with PartnerClient(
            transport=recording(seen), event_hooks={"request": [hook]}, context=CONTEXT
        ) as client:
            await client.get(f"{BASE}/a", auth=("user", "secret"))
            await client.get("https://user:secret@partner.test/b")
        assert hooked == ["/x/a", "/b"]
        assert all(r.headers["Authorization"].startswith("Basic ") for r in seen)
        assert all(r.headers["X-Hedui-Purpose"] == "dibao" for r in seen)
        async with PartnerClient(transport=recording(seen)) as client:
            await client.get("https://user:secret@partner.test/c")
        assert seen[-1].headers["Authorization"].startswith("Basic ")

    async def test_a_plain_send_reads_the_body_unless_streamed(self) -> None:
        def handle(_: httpx.Request) -> httpx.Response:
            return httpx.Response(200, stream=Raw(b"ok" * 10_000))

        async with PartnerClient(transport=httpx.MockTransport(handle)) as client:
            response = await client.get(f"{BASE}/a")
            assert response.is_stream_consumed
            assert response.content == b"ok" * 10_000
            async with client.stream("GET", f"{BASE}/a") as streamed:
                assert not streamed.is_stream_consumed
                assert await streamed.aread() == b"ok" * 10_000


def id_numbers() -> st.SearchStrategy[str]:
    return st.from_regex(
        r"[1-6][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}", fullmatch=True
    ).map(lambda first17: first17 + check_character(first17))


class TestPartnerText:
    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b'<Error code="E500">internal</Error>', "E500"),
            (b'{"code": 5000, "message": "x"}', "5000"),
            (b'{"ret": "9999", "msg": "x"}', "9999"),
            (b'{"error": {"code": "service_unavailable", "message": "x"}}', "service_unavailable"),
            (b'{"code": "acct6222020200112233"}', None),
            (b'{"code": "call 13800138000"}', None),
            (b'{"flag": "0", "errmsg": "x"}', None),
            (b'{"error": "unknown inquiry"}', None),
            (b"plain text", None),
            (b"", None),
        ],
    )
    def test_error_code_of_each_partner_shape(self, body: bytes, code: str | None) -> None:
        assert partner_error_code(body) == code

    @given(id_number=id_numbers(), message=st.text(max_size=40))
    def test_error_code_never_quotes_an_id_number(self, id_number: str, message: str) -> None:
        for body in (
            json.dumps({"code": id_number, "message": message}).encode(),
            json.dumps({"error": {"code": f"{id_number}{message}"}}).encode(),
            f'<Error code="{id_number}">{id_number}</Error>'.encode(),
        ):
            assert id_number not in (partner_error_code(body) or "")

    def test_validation_message_names_fields_not_values(self) -> None:
        class Wire(BaseModel):
            balance: int

        with pytest.raises(ValidationError) as info:
            Wire.model_validate({"balance": "11010519491231002X 3000.00"})
        message = describe(info.value)
        assert message == "unexpected body: balance (int_parsing)"

    def test_json_numbers_are_exact_decimals(self) -> None:
        assert str(load_json(b'{"a": 0.10}')["a"]) == "0.10"  # type: ignore[index]

    @pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b"{", b"\xff"])
    def test_non_json_and_non_numbers_are_malformed(self, body: bytes) -> None:
        with pytest.raises(MalformedResponse, match="not JSON"):
            load_json(body)

    @pytest.mark.parametrize(
        "body",
        [
            b'{"code": 0, "code": 1}',
            b'{"people": [{"id": "1", "income": 99999, "income": 0}]}',
            b'{"a": {"b": {"c": 1, "c": 1}}}',  # even the same value twice
        ],
    )
    def test_an_object_naming_a_member_twice_is_malformed(self, body: bytes) -> None:
        """Which one the partner meant nobody can say: never the last one taken as fact."""
        with pytest.raises(MalformedResponse, match="names a member twice"):
            load_json(body)

    @pytest.mark.parametrize("encoding", ["bogus-enc", "rot13", "hex"])
    def test_xml_declaring_an_unknown_encoding_is_malformed(self, encoding: str) -> None:
        body = f'<?xml version="1.0" encoding="{encoding}"?><e code="E1"/>'.encode()
        with pytest.raises(MalformedResponse, match="not well-formed XML"):
            parse_xml(body)
        assert partner_error_code(body) is None  # an error body: no code, no crash

    def test_the_same_name_in_different_objects_is_fine(self) -> None:
        assert load_json(b'[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]') == [
            {"a": 1},
            {"a": 2},
            {"b": {"a": 3}},
        ]

    @pytest.mark.parametrize(
        ("code", "quoted"),
        [
            ("E500", "E500"),
            ("internal_server_error", "internal_server_error"),
            ("440524-188001-010014", "?"),  # an ID number written apart
            ("110105.19491231.002X", "?"),
            ("1234567", "?"),  # a long run of digits
            ("no such person", "?"),  # free text
        ],
    )
    def test_only_short_codes_are_quoted(self, code: str, quoted: str) -> None:
        assert safe_code(code) == quoted


class TestConfig:
    def test_base_url_loses_its_trailing_slash(self) -> None:
        assert config().model_copy().base_url == BASE
        assert ConnectorConfig(base_url=BASE + "/").base_url == BASE

    @pytest.mark.parametrize("url", ["partner.test", "ftp://partner.test", ""])
    def test_base_url_must_be_http(self, url: str) -> None:
        with pytest.raises(ValidationError, match="http"):
            ConnectorConfig(base_url=url)


_FRAMING_NAMES = [
    "Content-Length",
    "content-length",
    "Content-Encoding",
    "Transfer-Encoding",
    "X-A",
]
_FRAMING_VALUES = [b"12", b"", b" gzip ", b"identity", b"chunked", b"\xef\xbc\x91", b"\xe9"]


@given(
    st.lists(
        st.tuples(st.sampled_from(_FRAMING_NAMES), st.sampled_from(_FRAMING_VALUES)), max_size=5
    )
)
def test_framing_is_read_as_headers_get_reads_it(raw: list[tuple[str, bytes]]) -> None:
    """One pass over the headers finds what `get` and `in` would."""
    headers = httpx.Headers([(name.encode(), value) for name, value in raw])
    framing = _Framing.of(headers)
    assert framing.length == headers.get("content-length", "")
    assert framing.encoding == headers.get("content-encoding")
    assert framing.chunked == ("transfer-encoding" in headers)
