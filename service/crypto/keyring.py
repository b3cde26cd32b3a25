"""AES-256-GCM field encryption with associated data, and the blind index.

A sealed value is the text `v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`: a fresh 96-bit
nonce per value, and associated data binding the table, column and row the value belongs
to and the key id that sealed it. A ciphertext copied into another row, another column or
another table, or relabelled with another key id, does not open: `Tampered` is raised,
never a silently wrong plaintext.

Data keys are random 256-bit keys, stored in the database only wrapped (AES-256-GCM) by
the key-encryption key (KEK), which lives outside the database (`service.crypto.kek`). The
blind-index key is a separate random 256-bit key, wrapped the same way: the HMAC-SHA256
of a normalised ID number lets equality lookups run in SQL without the ID number ever
being stored in the clear.
"""

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
_KID = re.compile(r"^[a-z0-9]{1,16}$")


class KeyringError(RuntimeError):
    """The keyring cannot do what was asked (a key is missing, the KEK does not match)."""


class Tampered(KeyringError):
    """A sealed value does not open with the associated data of where it was read: it was
    altered, or moved from another row, column or table."""


class UnknownKey(KeyringError):
    """A sealed value names a key id this keyring does not hold."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def associated_data(table: str, column: str, row: str, kid: str) -> bytes:
    """What a sealed value is bound to; NUL-separated, as none of the parts contains NUL."""
    return "\x00".join(("hedui", FORMAT, table, column, row, kid)).encode()


def key_id_of(token: str) -> str:
    """The key id a sealed value names (without opening it)."""
    parts = token.split(":", 2)
    if len(parts) != 3 or parts[0] != FORMAT:
        raise Tampered("not a sealed value of a known format")
    return parts[1]


def normalise_id_number(id_number: str) -> str:
    """The form the blind index is computed on: trimmed, check character `x` upper-cased."""
    return id_number.strip().upper()


@dataclass(frozen=True, slots=True)
class DataKey:
    kid: str
    secret: bytes

    def __post_init__(self) -> None:
        if not _KID.match(self.kid):
            raise KeyringError(f"invalid key id {self.kid!r}")
        if len(self.secret) != KEY_BYTES:
            raise KeyringError("a data key has 32 bytes")


class Keyring:
    """The data keys this process knows, the one new values are sealed with (`primary`),
    and the blind-index key. Thread-safe: immutable apart from `add`, which replaces whole
    dictionaries."""

    def __init__(self, keys: list[DataKey], primary: str, index_key: bytes) -> None:
        if len(index_key) != KEY_BYTES:
            raise KeyringError("the blind-index key has 32 bytes")
        self._ciphers: dict[str, AESGCM] = {}
        self._primary = primary
        self._index_key = index_key
        for key in keys:
            self._ciphers[key.kid] = AESGCM(key.secret)
        if primary not in self._ciphers:
            raise KeyringError(f"the primary key {primary!r} is not in the keyring")

    @property
    def primary(self) -> str:
        return self._primary

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    def update(self, keys: list[DataKey], primary: str) -> None:
        """Learn keys created elsewhere (a rotation) and which one seals new values."""
        ciphers = dict(self._ciphers)
        for key in keys:
            if key.kid not in ciphers:
                ciphers[key.kid] = AESGCM(key.secret)
        if primary not in ciphers:
            raise KeyringError(f"the primary key {primary!r} is not in the keyring")
        self._ciphers = ciphers
        self._primary = primary

    # -- sealing --------------------------------------------------------------------------

    def seal(self, plaintext: bytes, *, table: str, column: str, row: str) -> str:
        kid = self._primary
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(
            nonce, plaintext, associated_data(table, column, row, kid)
        )
        return f"{FORMAT}:{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str, *, table: str, column: str, row: str) -> bytes:
        kid = key_id_of(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownKey(f"no data key {kid!r} in this keyring")
        try:
            raw = base64.urlsafe_b64decode(token.split(":", 2)[2])
        except ValueError as error:
            raise Tampered(f"{table}.{column}: not a sealed value") from error
        if len(raw) < NONCE_BYTES + 16:
            raise Tampered(f"{table}.{column}: sealed value too short")
        try:
            return cipher.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data(table, column, row, kid)
            )
        except InvalidTag:
            raise Tampered(
                f"{table}.{column} of row {row}: the sealed value does not belong here"
            ) from None

    def reseal(self, token: str, *, table: str, column: str, row: str) -> str:
        """The same plaintext sealed with the primary key (rotation)."""
        plaintext = self.open(token, table=table, column=column, row=row)
        return self.seal(plaintext, table=table, column=column, row=row)

    def seal_text(self, value: str, *, table: str, column: str, row: str) -> str:
        return self.seal(value.encode(), table=table, column=column, row=row)

    def open_text(self, token: str, *, table: str, column: str, row: str) -> str:
        return self.open(token, table=table, column=column, row=row).decode()

    def seal_json(self, value: Any, *, table: str, column: str, row: str) -> str:
        # orjson writes what `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`
        # wrote (compact UTF-8), several times faster; `open_json` reads either.
        text = orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
        return self.seal(text, table=table, column=column, row=row)

    def open_json(self, token: str, *, table: str, column: str, row: str) -> Any:
        return json.loads(self.open(token, table=table, column=column, row=row))

    # -- keyed hashes ---------------------------------------------------------------------

    def blind(self, id_number: str) -> str:
        """The blind index of an ID number: HMAC-SHA256 under the index key, hex."""
        message = b"id_number\x00" + normalise_id_number(id_number).encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    def keyed_hash(self, purpose: str, data: bytes) -> str:
        """An HMAC-SHA256 (hex) of `data` for `purpose` (e.g. an idempotent request's
        fingerprint): equal inputs compare equal, but the hash says nothing to whoever
        lacks the key, even for guessable inputs."""
        message = purpose.encode() + b"\x00" + data
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
