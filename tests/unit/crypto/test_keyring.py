"""The keyring: AES-256-GCM with associated data, key ids, the blind index, the KEK."""

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.crypto.kek import (
    default_key_file,
    load_kek,
    parse_kek,
    read_key_file,
    write_key_file,
)
from service.crypto.keyring import (
    DataKey,
    Keyring,
    KeyringError,
    Tampered,
    UnknownKey,
    key_id_of,
    new_key,
)
from service.crypto.store import unwrap, wrap
from service.models.data_key import DataKey as StoredKey

AT = {"table": "verification_members", "column": "id_number", "row": "v-1/0"}


def keyring(*kids: str, primary: str | None = None, index: bytes | None = None) -> Keyring:
    keys = [DataKey(kid, new_key()) for kid in kids or ("k1",)]
    return Keyring(keys, primary or keys[0].kid, index or new_key())


class TestSeal:
    def test_round_trip(self) -> None:
        ring = keyring()
        token = ring.seal_text("11010519491231002X", **AT)
        assert ring.open_text(token, **AT) == "11010519491231002X"

    def test_token_names_format_and_key_and_hides_plaintext(self) -> None:
        ring = keyring("k7")
        token = ring.seal_text("11010519491231002X", **AT)
        assert token.startswith("v1:k7:")
        assert key_id_of(token) == "k7"
        assert "11010519491231002X" not in token
        assert b"11010519491231002X" not in base64.urlsafe_b64decode(token.split(":", 2)[2])

    def test_fresh_nonce_per_value(self) -> None:
        ring = keyring()
        tokens = {ring.seal_text("same", **AT) for _ in range(50)}
        assert len(tokens) == 50
        nonces = {base64.urlsafe_b64decode(token.split(":", 2)[2])[:12] for token in tokens}
        assert len(nonces) == 50

    @pytest.mark.parametrize(
        "elsewhere",
        [
            {"row": "v-1/1"},
            {"row": "v-2/0"},
            {"column": "name"},
            {"table": "near_relatives"},
        ],
    )
    def test_moved_value_does_not_open(self, elsewhere: dict[str, str]) -> None:
        ring = keyring()
        token = ring.seal_text("11010519491231002X", **AT)
        with pytest.raises(Tampered):
            ring.open_text(token, **(AT | elsewhere))

    def test_relabelled_key_id_does_not_open(self) -> None:
        """Two keys: a value of k1 relabelled as k2 fails (the kid is in the AD, and the
        key differs)."""
        ring = keyring("k1", "k2")
        token = ring.seal_text("x", **AT)
        with pytest.raises(Tampered):
            ring.open_text(token.replace("v1:k1:", "v1:k2:"), **AT)

    def test_flipped_bit_does_not_open(self) -> None:
        ring = keyring()
        token = ring.seal_text("张三", **AT)
        raw = bytearray(base64.urlsafe_b64decode(token.split(":", 2)[2]))
        raw[-1] ^= 1
        forged = "v1:k1:" + base64.urlsafe_b64encode(bytes(raw)).decode()
        with pytest.raises(Tampered):
            ring.open_text(forged, **AT)

    @pytest.mark.parametrize(
        "garbage", ["", "plain", "v1:k1", "v1:k1:!!!", "v1:k1:AAAA", "v2:k1:AA"]
    )
    def test_garbage_is_tampered(self, garbage: str) -> None:
        with pytest.raises(Tampered):
            keyring().open_text(garbage, **AT)

    def test_unknown_key(self) -> None:
        token = keyring("k1").seal_text("x", **AT)
        with pytest.raises(UnknownKey):
            keyring("k2").open_text(token, **AT)

    def test_json_round_trip_keeps_decimals_as_text(self) -> None:
        from decimal import Decimal

        ring = keyring()
        value = {"balance": Decimal("1234.50"), "rows": [1, "二"]}
        assert ring.open_json(ring.seal_json(value, **AT), **AT) == {
            "balance": "1234.50",
            "rows": [1, "二"],
        }

    @given(
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(2**63), 2**63 - 1)
            | st.text(max_size=20)
            | st.decimals(allow_nan=False, allow_infinity=False, places=2),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=8) | st.integers(0, 99), children, max_size=4)
            ),
            max_leaves=12,
        )
    )
    def test_any_json_value_round_trips_as_the_standard_library_reads_it(
        self, value: object
    ) -> None:
        """What is sealed reads back as `json` itself would have written and read it
        (decimals as text, keys as text)."""
        expected = json.loads(json.dumps(value, default=str))
        assert _RING.open_json(_RING.seal_json(value, **AT), **AT) == expected

    @given(st.text(max_size=200))
    def test_any_text_round_trips(self, text: str) -> None:
        ring = _RING
        assert ring.open_text(ring.seal_text(text, **AT), **AT) == text


_RING = keyring()


class TestRotationInKeyring:
    def test_update_adds_key_and_moves_primary(self) -> None:
        ring = keyring("k1")
        old = ring.seal_text("x", **AT)
        ring.update([DataKey("k2", new_key())], "k2")
        assert key_id_of(ring.seal_text("y", **AT)) == "k2"
        assert ring.open_text(old, **AT) == "x"
        resealed = ring.reseal(old, **AT)
        assert key_id_of(resealed) == "k2"
        assert ring.open_text(resealed, **AT) == "x"

    def test_primary_must_be_known(self) -> None:
        with pytest.raises(KeyringError):
            keyring("k1").update([], "k9")


class TestBlindIndex:
    def test_equal_for_equal_numbers_normalised(self) -> None:
        ring = keyring()
        assert ring.blind("11010519491231002X") == ring.blind(" 11010519491231002x ")
        assert ring.blind("11010519491231002X") != ring.blind("440524188001010014")

    def test_depends_on_the_index_key(self) -> None:
        assert keyring().blind("440524188001010014") != keyring().blind("440524188001010014")
        index = new_key()
        assert keyring(index=index).blind("440524188001010014") == keyring(index=index).blind(
            "440524188001010014"
        )

    def test_keyed_hash_is_not_a_bare_digest(self) -> None:
        import hashlib

        ring = keyring()
        assert ring.keyed_hash("request", b"body") != hashlib.sha256(b"body").hexdigest()
        assert ring.keyed_hash("request", b"body") != ring.keyed_hash("other", b"body")


class TestKek:
    def test_key_file_is_private_and_round_trips(self, tmp_path: Path) -> None:
        path = tmp_path / "hedui.key"
        made = write_key_file(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert read_key_file(path).secret == made.secret

    def test_never_overwrites(self, tmp_path: Path) -> None:
        path = tmp_path / "hedui.key"
        write_key_file(path)
        with pytest.raises(FileExistsError):
            write_key_file(path)

    def test_env_key(self) -> None:
        secret = os.urandom(32)
        kek = load_kek(kek=base64.b64encode(secret).decode(), key_file=None, database_url="x")
        assert kek.secret == secret

    @pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode()])
    def test_bad_keys_refused(self, text: str) -> None:
        with pytest.raises(KeyringError):
            parse_kek(text, "HEDUI_KEK")

    def test_missing_key_file_says_how_to_make_one(self, tmp_path: Path) -> None:
        with pytest.raises(KeyringError, match="hedui keys init"):
            read_key_file(tmp_path / "absent.key")

    def test_default_beside_sqlite_is_created_once(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'hedui.db'}"
        assert default_key_file(url) == tmp_path / "hedui.db.key"
        first = load_kek(kek=None, key_file=None, database_url=url)
        again = load_kek(kek=None, key_file=None, database_url=url)
        assert first.secret == again.secret
        assert stat.S_IMODE((tmp_path / "hedui.db.key").stat().st_mode) == 0o600

    def test_postgres_needs_a_named_key(self) -> None:
        with pytest.raises(KeyringError, match="HEDUI_KEY_FILE"):
            load_kek(kek=None, key_file=None, database_url="postgresql+asyncpg://h/db")


class TestWrapping:
    def test_wrapped_key_unwraps_only_with_its_kek_and_labels(self, tmp_path: Path) -> None:
        kek = write_key_file(tmp_path / "a.key")
        other = write_key_file(tmp_path / "b.key")
        secret = new_key()
        row = StoredKey(kid="k1", purpose="data", state="primary", kek_id=kek.kek_id)
        row.wrapped = wrap(kek, "k1", "data", secret)
        assert unwrap(kek, row) == secret
        with pytest.raises(KeyringError, match="another key-encryption key"):
            unwrap(other, row)
        row.kid = "k2"  # a wrapped key moved to another id
        with pytest.raises(KeyringError, match="altered"):
            unwrap(kek, row)
