"""Reading a batch body as it arrives: one household at a time, never the whole body.

Two shapes, both yielding `(line, raw)` pairs where `raw` is one household's JSON text
(or a `TooLong` marker when it passes `max_line_bytes`, which is skipped to its end):

- NDJSON (`application/x-ndjson`): one household per line; `line` is the line number in
  the body (blank lines are counted and skipped), so it matches the line in the file.
- JSON (`application/json`): `{"reference": "...", "households": [{...}, ...]}`; `line`
  is the 1-based position in `households`. Other top-level members are collected (small,
  bounded) into `JsonHouseholds.fields`; they may come before or after `households`.

A JSON body is one document: a fault after its households (a bad reference, trailing
text) refuses all of it. So it is kept as it arrives (`Spool`: in memory, then in a
temporary file, bounded by the body's own limit) and read twice, first to check the whole
envelope (`JsonHouseholds.check`), then, once it is sound, for its households.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from schemas.problem import shown_name
from service.json_body import DuplicateMember, load_json, named_twice

MAX_FIELD_BYTES = 4096
"""Largest value of a top-level member other than `households` (JSON shape)."""

SPOOL_MEMORY_BYTES = 1 << 20
"""How much of a JSON body a `Spool` keeps in memory; the rest goes to a temporary file."""

_READ_BYTES = 1 << 16


class BodyMalformed(Exception):
    """The body's envelope is broken (not a single household): what and where."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class TooLong:
    size: int


Raw = bytes | TooLong


BOM = b"\xef\xbb\xbf"


async def _without_bom(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The body without the UTF-8 byte-order mark a Windows editor puts first (it would make
    line 1 invalid JSON), however the first bytes are cut into chunks."""
    head: bytes | None = b""
    async for chunk in chunks:
        if head is None:
            yield chunk
            continue
        head += chunk
        if len(head) < len(BOM) and BOM.startswith(head):
            continue  # too short yet to tell
        yield head.removeprefix(BOM)
        head = None
    if head:
        yield head


async def ndjson_lines(
    chunks: AsyncIterable[bytes], *, max_line_bytes: int
) -> AsyncIterator[tuple[int, Raw]]:
    """Each non-blank line of an NDJSON body with its 1-based line number."""
    buffer = bytearray()
    line = 0
    skipping = 0  # > 0: inside a line already known to be too long, this many bytes so far
    async for chunk in _without_bom(chunks):
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            if skipping:
                skipping += len(piece)
            elif len(buffer) + len(piece) > max_line_bytes:
                skipping = len(buffer) + len(piece)
                buffer.clear()
            else:
                buffer += piece
            if newline < 0:
                break
            line += 1
            if skipping:
                yield line, TooLong(skipping)
                skipping = 0
            elif buffer.strip():
                yield line, bytes(buffer)
            buffer.clear()
            start = newline + 1
    if skipping:
        yield line + 1, TooLong(skipping)
    elif buffer.strip():
        yield line + 1, bytes(buffer)


_SPECIAL = re.compile(rb'["\\{}\[\]]')
_DELIMITER = re.compile(rb"[,\]}\s]")
_WHITESPACE = b" \t\r\n"


@dataclass
class JsonHouseholds:
    """An incremental reader of the JSON shape; `fields` fills as the body is read."""

    max_line_bytes: int
    allowed: frozenset[str] = frozenset({"reference"})
    """Top-level members other than `households` that may appear; others are refused."""
    fields: dict[str, Any] = field(default_factory=dict)
    count: int = 0
    """How many households the body holds (once read to its end)."""

    async def households(  # noqa: PLR0912 - one branch per state of the envelope
        self, chunks: AsyncIterable[bytes]
    ) -> AsyncIterator[tuple[int, Raw]]:
        self.fields = {}  # read afresh: the same body may be read twice (`check`, then this)
        self.count = 0
        scanner = _Scanner(chunks)
        await scanner.expect(b"{", "the body must be a JSON object")
        seen_households = False
        first = True
        while True:
            byte = await scanner.peek_nonblank()
            if byte == b"}" and first:
                scanner.take(1)
                break
            if not first:
                await scanner.expect(b",", "expected ',' or '}' after a member")
                await scanner.peek_nonblank()
            first = False
            key_raw = await scanner.value(MAX_FIELD_BYTES)
            if isinstance(key_raw, TooLong) or not key_raw.startswith(b'"'):
                raise BodyMalformed("expected a member name")
            key = _decoded(key_raw, "a member name")
            if key in self.fields or (key == "households" and seen_households):
                raise BodyMalformed(named_twice(key))
            await scanner.expect(b":", "expected ':' after a member name")
            if key == "households":
                seen_households = True
                async for item in self._array(scanner):
                    yield item
            elif key not in self.allowed:
                raise BodyMalformed(f"unknown member {shown_name(key)!r}")
            else:
                value = await scanner.value(MAX_FIELD_BYTES)
                if isinstance(value, TooLong):
                    raise BodyMalformed(f"{key} is longer than {MAX_FIELD_BYTES} bytes")
                self.fields[key] = _decoded(value, key)
            if await scanner.peek_nonblank() == b"}":
                scanner.take(1)
                break
        if await scanner.peek_nonblank() != b"":
            raise BodyMalformed("unexpected text after the JSON object")
        if not seen_households:
            raise BodyMalformed("households is missing")

    async def check(self, chunks: AsyncIterable[bytes]) -> None:
        """Read the whole body once, households cut out and dropped: `BodyMalformed` for a
        fault anywhere in the envelope; `fields` hold its other members after."""
        async for _ in self.households(chunks):
            pass

    async def _array(self, scanner: _Scanner) -> AsyncIterator[tuple[int, Raw]]:
        await scanner.expect(b"[", "households must be an array")
        position = 0
        if await scanner.peek_nonblank() == b"]":
            scanner.take(1)
            return
        while True:
            position += 1
            self.count = position
            await scanner.peek_nonblank()
            yield position, await scanner.value(self.max_line_bytes, line=position)
            byte = await scanner.peek_nonblank()
            scanner.take(1)
            if byte == b"]":
                return
            if byte != b",":
                raise BodyMalformed("expected ',' or ']' after a household", position)


_T = TypeVar("_T")


class Spool:
    """A body kept as it arrives, to be read again (`chunks`): in memory up to
    `SPOOL_MEMORY_BYTES`, beyond that in a temporary file, written and read off the event
    loop. Its size is bounded by the limit the request guard puts on the body."""

    def __init__(self) -> None:
        # Not a `with` here: the file outlives this call; leaving `with Spool()` closes it.
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
        self._size = 0

    async def keep(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """`chunks`, passed on as each is kept."""
        async for chunk in chunks:
            await self._io(self._file.write, chunk)
            self._size += len(chunk)
            yield chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        """What was kept, from its start."""
        self._file.seek(0)
        while chunk := await self._io(self._file.read, _READ_BYTES):
            yield chunk

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    async def _io(self, call: Callable[[Any], _T], argument: Any) -> _T:
        if self._size <= SPOOL_MEMORY_BYTES:
            return call(argument)
        return await asyncio.to_thread(call, argument)


def _decoded(raw: bytes, what: str) -> Any:
    """One JSON value cut out of the envelope, decoded as every API body is (an object
    naming a member twice, an invalid escape such as `"\\x"`, bytes that are not UTF-8, or
    nesting too deep for the decoder is a malformed body)."""
    try:
        return load_json(raw)
    except DuplicateMember as error:
        raise BodyMalformed(error.msg) from error
    except UnicodeDecodeError as error:
        raise BodyMalformed(f"{what} is not UTF-8 ({SAVE_AS_UTF8})") from error
    except (ValueError, RecursionError) as error:
        raise BodyMalformed(f"{what} is not valid JSON") from error


SAVE_AS_UTF8 = "a file exported from Excel on Chinese Windows is GBK: save it as UTF-8"
"""What to do about a batch whose bytes are not UTF-8: a batch is a file someone saved."""


_CLOSING = {b"{": b"}", b"[": b"]"}


class _Scanner:
    """Bytes of a JSON text as they arrive, with just enough structure to cut out values."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = aiter(chunks)
        self._buffer = bytearray()
        self._position = 0
        self._ended = False

    async def _more(self) -> bool:
        if self._ended:
            return False
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._ended = True
            return False
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += chunk
        return True

    def take(self, count: int) -> None:
        self._position += count

    async def peek_nonblank(self) -> bytes:
        """The next byte that is not whitespace (not consumed); b'' at the end."""
        while True:
            while self._position < len(self._buffer):
                if self._buffer[self._position] not in _WHITESPACE:
                    return bytes(self._buffer[self._position : self._position + 1])
                self._position += 1
            if not await self._more():
                return b""

    async def expect(self, token: bytes, message: str) -> None:
        if await self.peek_nonblank() != token:
            raise BodyMalformed(message)
        self.take(1)

    async def value(  # noqa: PLR0912 - one branch per JSON token kind
        self, limit: int, line: int | None = None
    ) -> Raw:
        """One JSON value from here (an object, array, string or scalar), as bytes; past
        `limit` bytes it is read to its end and dropped (`TooLong`), so memory stays
        bounded by `limit` whatever was sent."""
        if await self.peek_nonblank() == b"":
            raise BodyMalformed("the body ends where a value was expected", line)
        if self._buffer[self._position] not in b'{["':
            return await self._scalar(limit, line)
        opened: list[bytes] = []  # the brackets open here, innermost last
        in_string = False
        escaped = False  # a backslash ended the bytes so far: skip the next one
        dropped = 0
        scan = self._position
        while True:
            if escaped and scan < len(self._buffer):
                scan += 1
                escaped = False
            while not escaped:
                match = _SPECIAL.search(self._buffer, scan)
                if match is None:
                    scan = len(self._buffer)
                    break
                char = match.group()
                scan = match.end()
                if in_string:
                    if char == b"\\":
                        if scan < len(self._buffer):
                            scan += 1
                        else:
                            escaped = True
                    elif char == b'"':
                        in_string = False
                        if not opened:
                            return self._cut(scan, dropped, limit)
                elif char == b'"':
                    in_string = True
                elif char in (b"{", b"["):
                    opened.append(_CLOSING[char])
                elif char in (b"}", b"]"):
                    if opened.pop() != char:
                        # `{]`: counting brackets alone would take it for a value.
                        raise BodyMalformed("a bracket closed by the other kind", line)
                    if not opened:
                        return self._cut(scan, dropped, limit)
                else:
                    raise BodyMalformed("a backslash outside a string", line)
            if dropped + scan - self._position > limit:
                # Already too long: forget what has been scanned, keep only the count.
                dropped += scan - self._position
                del self._buffer[self._position : scan]
                scan = self._position
            offset = scan - self._position
            if not await self._more():
                raise BodyMalformed("the body ends inside a value", line)
            scan = self._position + offset

    async def _scalar(self, limit: int, line: int | None) -> Raw:
        scan = self._position
        while True:
            match = _DELIMITER.search(self._buffer, scan)
            if match is not None:
                end = match.start()
                break
            scan = len(self._buffer)
            if scan - self._position > limit:
                raise BodyMalformed("a value is too long", line)
            offset = scan - self._position
            if not await self._more():
                end = len(self._buffer)
                break
            scan = self._position + offset
        raw = bytes(self._buffer[self._position : end])
        self._position = end
        return raw

    def _cut(self, end: int, dropped: int, limit: int) -> Raw:
        start = self._position
        self._position = end
        if dropped or end - start > limit:
            return TooLong(dropped + end - start)
        return bytes(self._buffer[start:end])
