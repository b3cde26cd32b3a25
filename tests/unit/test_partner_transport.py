"""The partner transport hands httpx the headers httpx itself would make of aiohttp's."""

import httpx
import pytest

from service.http import _headers

RAWS = [
    [],
    [(b"Content-Type", b"application/json"), (b"Content-Length", b"42")],
    [(b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"X-Caf\xc3\xa9", b"caf\xc3\xa9")],
    [(b"Content-Encoding", b"gzip"), (b"X-Latin", b"\xe9t\xe9")],
]


@pytest.mark.parametrize("raw", RAWS)
def test_headers_are_httpx_s_own(raw: list[tuple[bytes, bytes]]) -> None:
    ours, theirs = _headers(raw), httpx.Headers(raw)
    assert ours._list == theirs._list
    assert ours.encoding == theirs.encoding
    assert ours.multi_items() == theirs.multi_items()
    assert httpx.Response(200, headers=ours).headers == theirs
