"""JSON bodies read with each member named once, by the API's routes and the batch reader.

Python's `json` keeps the last of two members with the same name (`{"decision": "reject",
..., "decision": "approve"}` is an approval), while a proxy, a log or an audit layer
before hedui may read the first. A body that names a member twice is refused (422 at the
body, naming the member), as a batch's `households` given twice already is.
"""

import json
from typing import Any

from schemas.json_members import RepeatedMember, unique_members
from schemas.problem import DUPLICATE_MEMBER, shown_name


class DuplicateMember(json.JSONDecodeError):
    """Raised while decoding: FastAPI answers a decoding error as a validation error at the
    body, whose `ctx.error` is this message."""


_DECODER = json.JSONDecoder(object_pairs_hook=unique_members)
"""Made once: `json.loads` with any option builds a new decoder (and its scanner) a call."""


def named_twice(name: str) -> str:
    """Why a JSON object is refused that names `name` twice (shown as `shown_name` says)."""
    return f"{DUPLICATE_MEMBER}{shown_name(name)!r}"


def load_json(body: bytes) -> Any:
    """A JSON body as the API routes read it: `DuplicateMember` for a member named twice
    (a `json.JSONDecodeError`, as for any body that is not JSON). UTF-8 only (RFC 8259
    §8.1): `json.loads` of bytes would take UTF-16 and UTF-32 too, guessing from the NUL
    bytes, and an NDJSON upload in UTF-16, split at its newline bytes, would be read in
    part. `UnicodeDecodeError` for bytes that are not UTF-8."""
    text = body.decode("utf-8")
    try:
        return _DECODER.decode(text)
    except RepeatedMember as repeated:
        raise DuplicateMember(named_twice(repeated.name), "", 0) from None
