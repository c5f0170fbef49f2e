"""Where the tree-head signing key comes from: settings, or a 0600 file under the data directory.

Called at ``yunting migrate`` and at start-up (``build_ledger``), never at import time.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from yunting.infra.ledger.errors import SigningKeyError
from yunting.infra.settings import Settings

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "ed25519.key"


def key_path(settings: Settings) -> Path:
    return settings.data_dir / "ledger" / KEY_FILE_NAME


def parse_private_key(text: str) -> Ed25519PrivateKey:
    """PKCS#8 PEM, or base64 of the 32-byte RFC 8032 seed; ``SigningKeyError`` otherwise."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
        except (ValueError, TypeError) as e:
            raise SigningKeyError(f"ledger signing key is not a readable PEM key: {e}") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"expected an Ed25519 key, got {type(key).__name__}")
        return key
    try:
        seed = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError) as e:
        raise SigningKeyError("ledger signing key is neither PEM nor base64") from e
    if len(seed) != 32:
        raise SigningKeyError(f"expected a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read_key_file(path: Path) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # A key others can read cannot vouch for anything; refuse rather than warn.
        raise SigningKeyError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    return parse_private_key(path.read_text(encoding="ascii"))


def _create_key_file(path: Path) -> Ed25519PrivateKey:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    # O_EXCL: if two processes start at once, exactly one writes; the other reads its key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, private_key_pem(key))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_signing_key(settings: Settings, *, create: bool) -> Ed25519PrivateKey:
    """The configured key (``YUNTING_LEDGER_SIGNING_KEY``), else the key file.

    With ``create``, a missing key file is generated (mode 0600). Without it, a missing key is a
    ``SigningKeyError`` (used by checks that must not invent a new identity for the log).
    """
    configured = settings.ledger_signing_key.get_secret_value()
    if configured:
        return parse_private_key(configured)
    path = key_path(settings)
    if path.exists():
        return _read_key_file(path)
    if not create:
        raise SigningKeyError(f"no ledger signing key configured and none at {path}")
    try:
        key = _create_key_file(path)
    except FileExistsError:
        return _read_key_file(path)
    logger.warning("created a new ledger signing key at %s; back it up", path)
    return key
