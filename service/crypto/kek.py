"""The key-encryption key (KEK): where it comes from, and the key file that holds it.

Never from the database. In order:
1. `HEDUI_KEK`: the key itself, base64 (32 bytes), e.g. from a secret manager;
2. `HEDUI_KEY_FILE`: a key file made by `hedui keys init`;
3. a SQLite database in a file: the key file beside it (`<database>.key`), created on
   first run with a warning to back it up. PostgreSQL has no such default: losing the key
   loses every sealed value, so a deployment names its key file on purpose.
"""

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy.engine import make_url

from service.crypto.keyring import KEY_BYTES, KeyringError, new_key

log = structlog.get_logger(__name__)

FILE_HEADER = "hedui-kek-v1"


@dataclass(frozen=True, slots=True)
class Kek:
    secret: bytes
    origin: str
    """Where it came from, for messages: an env variable's or a file's name, never the key."""

    @property
    def kek_id(self) -> str:
        """A short public fingerprint: tells which KEK wrapped a data key."""
        return hashlib.sha256(b"hedui-kek-id\x00" + self.secret).hexdigest()[:16]


def parse_kek(text: str, origin: str) -> Kek:
    value = text.strip()
    if value.startswith(FILE_HEADER + ":"):
        value = value.removeprefix(FILE_HEADER + ":")
    try:
        secret = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{origin}: not a base64 key") from None
    if len(secret) != KEY_BYTES:
        raise KeyringError(f"{origin}: a key-encryption key has {KEY_BYTES} bytes")
    return Kek(secret, origin)


def write_key_file(path: Path) -> Kek:
    """Create a new key file readable by its owner alone (0600); never overwrites one.

    Written aside and linked into place, so that a process starting at the same moment
    finds either no file or a whole one (`FileExistsError` for the one that lost).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = new_key()
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(f"{FILE_HEADER}:{base64.b64encode(secret).decode()}\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(aside, path)
    finally:
        aside.unlink()
    return Kek(secret, path.name)


def read_key_file(path: Path) -> Kek:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise KeyringError(
            f"no key file at {path}: create one with `hedui keys init {path}` (and back it up)"
        ) from None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("key_file_readable_by_others", key_file=path.name, mode=oct(mode))
    return parse_kek(text, path.name)


def default_key_file(database_url: str) -> Path | None:
    """Beside a SQLite database file; None for PostgreSQL and in-memory SQLite."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    database = url.database
    if not database or database.startswith(":memory:") or database.startswith("file:"):
        return None
    return Path(database).with_name(Path(database).name + ".key")


def load_kek(*, kek: str | None, key_file: Path | None, database_url: str) -> Kek:
    """The KEK from `HEDUI_KEK`, `HEDUI_KEY_FILE`, or the default key file beside a SQLite
    database (created when missing: then a warning says to back it up)."""
    if kek:
        return parse_kek(kek, "HEDUI_KEK")
    if key_file is not None:
        return read_key_file(key_file)
    default = default_key_file(database_url)
    if default is None:
        raise KeyringError(
            "no key-encryption key: set HEDUI_KEY_FILE (create one with `hedui keys init "
            "PATH`) or HEDUI_KEK; a PostgreSQL deployment names its key on purpose"
        )
    if default.exists():
        return read_key_file(default)
    try:
        created = write_key_file(default)
    except FileExistsError:  # another process created it meanwhile
        return read_key_file(default)
    log.warning(
        "key_file_created",
        key_file=str(default),
        advice="BACK UP THIS FILE: without it every ID number, name and partner record in "
        "the database is unreadable; keep the backup apart from the database's",
    )
    return created
