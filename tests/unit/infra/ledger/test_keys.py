"""Where the signing key comes from: settings, or a 0600 file created on first start."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from yunting.infra.ledger.errors import SigningKeyError
from yunting.infra.ledger.keys import key_path, load_signing_key, private_key_pem
from yunting.infra.ledger.signing import public_key_raw
from yunting.infra.settings import Settings


def settings(tmp_path: Path, key: str = "") -> Settings:
    return Settings(data_dir=tmp_path, ledger_signing_key=SecretStr(key))


def raw(key: Ed25519PrivateKey) -> bytes:
    return public_key_raw(key.public_key())


def test_first_start_creates_a_private_key_file(tmp_path: Path) -> None:
    created = load_signing_key(settings(tmp_path), create=True)
    path = key_path(settings(tmp_path))
    assert path == tmp_path / "ledger" / "ed25519.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The next start reads the same key instead of inventing a new identity.
    assert raw(load_signing_key(settings(tmp_path), create=True)) == raw(created)


def test_without_create_a_missing_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="no ledger signing key"):
        load_signing_key(settings(tmp_path), create=False)
    assert not key_path(settings(tmp_path)).exists()


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_signing_key(settings(tmp_path), create=True)
    key_path(settings(tmp_path)).chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_signing_key(settings(tmp_path), create=True)


def test_key_from_settings_as_pem_or_base64_seed(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = private_key_pem(key).decode()
    seed = base64.b64encode(key.private_bytes_raw()).decode()
    assert raw(load_signing_key(settings(tmp_path, pem), create=False)) == raw(key)
    assert raw(load_signing_key(settings(tmp_path, seed), create=False)) == raw(key)
    assert not key_path(settings(tmp_path)).exists()  # a configured key writes no file


@pytest.mark.parametrize("value", ["not a key", base64.b64encode(b"short").decode()])
def test_malformed_configured_keys_are_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SigningKeyError):
        load_signing_key(settings(tmp_path, value), create=True)
