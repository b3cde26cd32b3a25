"""What callers send is bounded, and nobody unauthenticated makes the service read a byte.

Before, a 50 MB body was parsed before the token was looked at: ten concurrent
unauthenticated 49 MB requests took the server to 811 MiB. These tests speak raw HTTP/1.1
over a socket and send the headers alone: an answer proves the body was never waited for.
"""

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from service.app import create_app
from service.config import Settings
from tests.conftest import CLIENT_TLS, ClientFactory, LiveService
from tests.factories import make_id_number, member, verification_body

FORTY_NINE_MB = 49 * 1024 * 1024


async def exchange(base_url: str, head: str, *chunks: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a request head (and any chunks) without completing the body; read the answer."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(head.encode("latin-1"))
        for chunk in chunks:
            try:
                writer.write(chunk)
                await writer.drain()
            except ConnectionError:
                break  # the service answered and closed while we were still sending
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 20)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body
    finally:
        writer.close()


def post_head(path: str, token: str | None, **headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: hedui", "Content-Type: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def bearer(client: httpx.AsyncClient) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


async def test_a_declared_oversized_body_is_413_before_it_is_sent(
    live_service: LiveService, api_client: ClientFactory
) -> None:
    caseworker = await api_client()
    head = post_head("/v1/verifications", bearer(caseworker), Content_Length=str(FORTY_NINE_MB))

    status, headers, body = await exchange(live_service.base_url, head)

    assert status == 413
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["type"] == "/problems/too-large"
    assert "HEDUI_MAX_BODY_BYTES" in problem["detail"]


async def test_an_unauthenticated_body_is_refused_before_it_is_read(
    live_service: LiveService,
) -> None:
    """Within the size limit, but nobody: 401 while the body has not even been sent."""
    for token in (None, "hd_unknown"):
        head = post_head("/v1/verifications", token, Content_Length="900000")
        status, headers, body = await exchange(live_service.base_url, head)
        assert status == 401
        assert headers["www-authenticate"] == "Bearer"
        assert json.loads(body)["type"] == "/problems/unauthorized"


async def test_an_unauthenticated_oversized_body_is_refused_unread(
    live_service: LiveService,
) -> None:
    head = post_head("/v1/near-relatives", None, Content_Length=str(FORTY_NINE_MB))
    status, _, _ = await exchange(live_service.base_url, head)
    assert status in (401, 413)


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(
    live_service: LiveService, api_client: ClientFactory
) -> None:
    """No Content-Length to go by: the stream is counted and refused as it passes 1 MiB,
    although the request never ends."""
    caseworker = await api_client()
    head = post_head("/v1/verifications", bearer(caseworker), Transfer_Encoding="chunked")
    piece = b" " * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 24  # 1.5 MiB, never terminated

    status, headers, body = await exchange(live_service.base_url, head, *chunks)

    assert status == 413
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["status"] == 413


async def test_a_body_within_the_limit_is_served(api_client: ClientFactory) -> None:
    caseworker = await api_client()
    body = verification_body([member(make_id_number("530103"))], region_code="530103")
    body["reference"] = "case-limit-" + "x" * 100
    response = await caseworker.post("/v1/verifications", json=body)
    assert response.status_code == 202, response.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving_app(app: ASGIApp) -> AsyncIterator[str]:
    """`app` served by uvicorn on a loopback port, lifespan included."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def serving(settings: Settings) -> AbstractAsyncContextManager[str]:
    """`create_app(settings)` served on a loopback port (whatever `settings.host` says)."""
    return serving_app(create_app(settings))


async def test_the_limit_is_configurable(
    live_service: LiveService, api_client: ClientFactory, tmp_path: Path
) -> None:
    settings = live_service.settings.model_copy(
        update={"max_body_bytes": 4096, "sandbox_data": tmp_path / "sandbox.db"}
    )
    caseworker = await api_client()
    small = verification_body([member(make_id_number("530103"))], region_code="530103")
    large = {**small, "members": [member(make_id_number("530103"), "张" + "三" * 60)] * 30}
    async with serving(settings) as base_url:
        headers = {"Authorization": caseworker.headers["Authorization"]}
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, verify=CLIENT_TLS
        ) as client:
            accepted = await client.post("/v1/verifications", json=small)
            refused = await client.post("/v1/verifications", json=large)
            seeding = await client.post(
                "/sandbox/people", json={"id_number": make_id_number(), "x": "y" * 5000}
            )
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 413
    assert "4096 bytes" in refused.json()["detail"]
    assert seeding.status_code == 413


@pytest.mark.parametrize("path", ["/v1/no-such-thing", "/v1"])
async def test_every_v1_path_needs_a_token_first(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 401


async def test_no_body_where_one_is_required_is_422_saying_so_not_415(
    api_client: ClientFactory,
) -> None:
    """`curl -X POST` with nothing: the body is missing, not in the wrong format."""
    approver = await api_client(role="approver", region="53")
    answer = await approver.post("/v1/verifications/nonexistent/decision")
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error == {
        "loc": ["body"],
        "msg": "a JSON body is required (Content-Type: application/json)",
    }


async def test_a_moment_without_its_offset_or_a_malformed_code_says_what_to_send(
    api_client: ClientFactory,
) -> None:
    caseworker = await api_client(role="caseworker", region="53")
    listed = await caseworker.get(
        "/v1/verifications", params={"created_from": "2026-12-06T21:47:45"}
    )
    assert listed.status_code == 422, listed.text
    assert listed.json()["errors"] == [
        {
            "loc": ["query", "created_from"],
            "msg": "must give its UTC offset: 2026-12-04T10:00:00+08:00, or Z for UTC",
        }
    ]
    body = verification_body([member(make_id_number("530103"))], region_code="530103")
    body["region_code"] = "53"
    refused = await caseworker.post("/v1/verifications", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "loc": ["body", "region_code"],
            "msg": "must be 6 digits: a GB/T 2260 county code, such as 530102",
        }
    ]


async def test_a_body_not_sent_as_json_is_415_naming_the_header(
    api_client: ClientFactory,
) -> None:
    """`curl -d` without a header sends a form: the answer says what to send, not that the
    body is the wrong shape; so does a body with no Content-Type (not read as JSON)."""
    caseworker = await api_client(role="caseworker", region="53")
    body = json.dumps(verification_body([member(make_id_number("530103"))], region_code="530103"))
    answers = [
        await caseworker.post(
            "/v1/verifications", content=body, headers={"Content-Type": content_type}
        )
        for content_type in ("application/x-www-form-urlencoded", "text/plain")
    ]
    for answer in answers:
        assert answer.status_code == 415, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["loc"] == ["header", "content-type"]
    bare = await caseworker.post("/v1/verifications", content=body)
    assert bare.status_code == 415, bare.text
    sent = await caseworker.post(
        "/v1/verifications", content=body, headers={"Content-Type": "application/json"}
    )
    assert sent.status_code == 202, sent.text
    suffixed = await caseworker.post(
        "/v1/verifications",
        content=json.dumps({"program": "dibao"}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert suffixed.status_code == 422, suffixed.text  # read as JSON: its fields are missing
