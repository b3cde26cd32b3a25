"""Reading batch bodies as streams: every household found, whatever the chunking, and the
memory taken bounded by one household, not by the body."""

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.batch.stream import (
    SPOOL_MEMORY_BYTES,
    BodyMalformed,
    JsonHouseholds,
    Spool,
    TooLong,
    ndjson_lines,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(lines: AsyncIterator[tuple[int, Any]]) -> list[tuple[int, Any]]:
    return [item async for item in lines]


@given(
    households=st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=6),
    size=st.integers(min_value=1, max_value=64),
    reference_first=st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_json_reader_finds_what_json_loads_finds(
    households: list[dict[str, Any]], size: int, reference_first: bool
) -> None:
    """The households and the reference, in order, for any chunk size and member order."""
    document = (
        {"reference": 'r"\\ef', "households": households}
        if reference_first
        else {"households": households, "reference": 'r"\\ef'}
    )
    body = json.dumps(document, ensure_ascii=False, indent=1).encode()
    reader = JsonHouseholds(max_line_bytes=1 << 20)
    found = asyncio.run(collect(reader.households(chunked(body, size))))
    assert [line for line, _ in found] == list(range(1, len(households) + 1))
    assert [json.loads(raw) for _, raw in found] == households
    assert reader.fields == {"reference": 'r"\\ef'}


@given(
    lines=st.lists(st.text(alphabet='ab{}" ', min_size=1, max_size=10), min_size=1, max_size=5),
    size=st.integers(min_value=1, max_value=8),
)
@settings(max_examples=100, deadline=None)
def test_a_leading_byte_order_mark_is_not_part_of_line_1(lines: list[str], size: int) -> None:
    """However the body is cut into chunks; a BOM anywhere else is left alone."""
    body = "\n".join(lines).encode()
    plain = asyncio.run(collect(ndjson_lines(chunked(body, size), max_line_bytes=20)))
    marked = asyncio.run(
        collect(ndjson_lines(chunked(b"\xef\xbb\xbf" + body, size), max_line_bytes=20))
    )
    assert marked == plain


@given(
    lines=st.lists(st.text(alphabet='ab{}" ', max_size=30), max_size=10),
    size=st.integers(min_value=1, max_value=16),
)
@settings(max_examples=200, deadline=None)
def test_ndjson_lines_keep_their_numbers(lines: list[str], size: int) -> None:
    body = "\n".join(lines).encode()
    found = asyncio.run(collect(ndjson_lines(chunked(body, size), max_line_bytes=20)))
    expected = [
        (number, TooLong(len(text.encode())) if len(text.encode()) > 20 else text.encode())
        for number, text in enumerate(lines, start=1)
        if text.strip() or len(text.encode()) > 20
    ]
    assert found == expected


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"households": {}}',
        b'{"households": [1',
        b"{}",
        b'{"households": []} x',
        b'{"other": 1, "households": []}',
        b'{"reference": "a", "reference": "b", "households": []}',
        b'{"households": [], "reference": "a", "reference": "b"}',
        b'{"households": [], "households": []}',
        b'{"reference": {"x": 1, "x": 2}, "households": []}',
        b'{"\\x": 1, "households": []}',
    ],
)
def test_broken_envelopes_are_refused(body: bytes) -> None:
    with pytest.raises(BodyMalformed):
        asyncio.run(collect(JsonHouseholds(max_line_bytes=100).households(chunked(body, 3))))


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('{"张三丰": 1, "households": []}', "unknown member '张**'"),
        ('{"households": [], "李四": 1}', "unknown member '李*'"),
        (
            '{"reference": "a", "households": [], "reference": "b"}',
            "a member named twice: 'reference'",
        ),
        ('{"%s": 1, "households": []}' % ("x" * 100), "unknown member '%s…'" % ("x" * 64)),
    ],
    ids=["a name before", "a name after", "ascii", "long"],
)
def test_a_member_name_is_repeated_masked_and_short(body: str, said: str) -> None:
    """The envelope's member names are the caller's text, a person's name perhaps: an
    answer masks one in other than ASCII, as a name is, and shortens a long one."""
    with pytest.raises(BodyMalformed) as refused:
        asyncio.run(JsonHouseholds(max_line_bytes=100).check(chunked(body.encode(), 5)))
    assert str(refused.value) == said


def test_a_reference_in_gbk_is_said_to_be_no_utf8() -> None:
    """A body saved from Excel on Chinese Windows: "not valid JSON" sent nobody to the
    file's encoding."""
    body = '{"reference": "低保复核", "households": []}'.encode("gbk")
    with pytest.raises(BodyMalformed) as refused:
        asyncio.run(JsonHouseholds(max_line_bytes=100).check(chunked(body, 5)))
    assert str(refused.value) == (
        "reference is not UTF-8 (a file exported from Excel on Chinese Windows is GBK: "
        "save it as UTF-8)"
    )


@pytest.mark.parametrize(
    "tail",
    [b', "reference": "ok"} x', b', "other": 1}', b', "reference": "\\x"}', b"", b"]}"],
)
def test_a_fault_after_the_households_fails_the_check(tail: bytes) -> None:
    """`check` reads to the end: what follows the households counts as much as they do."""
    body = b'{"households": [{"a": 1}, {"b": 2}]' + tail
    with pytest.raises(BodyMalformed):
        asyncio.run(JsonHouseholds(max_line_bytes=100).check(chunked(body, 7)))


@pytest.mark.parametrize("size", [SPOOL_MEMORY_BYTES // 2, 3 * SPOOL_MEMORY_BYTES])
def test_a_spooled_body_reads_back_as_it_came(size: int) -> None:
    """Checked once as it arrives, then read again from memory or from a temporary file:
    the same households, the same fields."""
    households = [{"n": n, "pad": "x" * 1000} for n in range(size // 1000)]
    body = json.dumps({"households": households, "reference": "r"}).encode()

    async def twice() -> tuple[list[tuple[int, Any]], dict[str, Any]]:
        reader = JsonHouseholds(max_line_bytes=1 << 20)
        with Spool() as spool:
            await reader.check(spool.keep(chunked(body, 65536 - 7)))
            return await collect(reader.households(spool.chunks())), dict(reader.fields)

    found, fields = asyncio.run(twice())
    assert [json.loads(raw) for _, raw in found] == households
    assert fields == {"reference": "r"}


def _household(n: int) -> dict[str, Any]:
    return {
        "reference": f"recheck-{n}",
        "program": "dibao",
        "region_code": "530102",
        "area": "urban",
        "consent": {"document_id": f"AUTH-{n}", "signed_on": "2026-11-01"},
        "members": [
            {"id_number": "11010519491231002X", "name": "张三", "relation": "applicant"},
            {"id_number": "440524188001010014", "name": "李四", "relation": "spouse"},
        ],
    }


def _stream_peak(body_parts: Iterator[bytes], reader: str) -> tuple[int, int]:
    """(households read, peak bytes allocated while reading) of a 20,000-line upload."""

    async def chunks() -> AsyncIterator[bytes]:
        for part in body_parts:
            yield part

    async def count() -> int:
        lines = (
            ndjson_lines(chunks(), max_line_bytes=1 << 20)
            if reader == "ndjson"
            else JsonHouseholds(max_line_bytes=1 << 20).households(chunks())
        )
        total = 0
        async for _, raw in lines:
            assert not isinstance(raw, TooLong)
            total += 1
        return total

    tracemalloc.start()
    try:
        read = asyncio.run(count())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return read, peak


@pytest.mark.parametrize("reader", ["ndjson", "json"])
def test_memory_is_bounded_by_a_chunk_not_by_the_upload(reader: str) -> None:
    """20,000 households (about 7 MB) arrive in 64 KiB pieces, generated as they are
    sent: reading them takes well under 1 MB at its peak."""
    line = json.dumps(_household(0), ensure_ascii=False).encode()
    count = 20_000

    def parts() -> Iterator[bytes]:
        pending = bytearray(b'{"households": [' if reader == "json" else b"")
        for n in range(count):
            pending += line
            pending += b"\n" if reader == "ndjson" else (b"," if n < count - 1 else b"]}")
            while len(pending) >= 65536:
                yield bytes(pending[:65536])
                del pending[:65536]
        yield bytes(pending)

    read, peak = _stream_peak(parts(), reader)
    assert read == count
    assert count * len(line) > 6_000_000
    assert peak < 1_000_000, peak
