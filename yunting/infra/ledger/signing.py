"""Ed25519 tree-head signing and verification (RFC 8032 via ``cryptography``). No file I/O.

The key id is RFC 6962 §3.2's LogID: SHA-256 over the DER SubjectPublicKeyInfo of the public
key, so one number names the key in tree heads, bundles and the published key document.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from yunting.infra.ledger.model import SignedTreeHead, TreeHead, tree_head_signature_input


def key_id(public_key: Ed25519PublicKey) -> bytes:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM, DER SubjectPublicKeyInfo, or the raw 32 bytes; ``ValueError``."""
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(stripped)
    else:
        key = serialization.load_der_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
    return key


@dataclass(frozen=True)
class TreeHeadSigner:
    """Signs tree heads with the log's Ed25519 key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> bytes:
        return key_id(self.public_key)

    def sign(self, head: TreeHead, *, timestamp_ms: int) -> SignedTreeHead:
        data = tree_head_signature_input(
            tree_size=head.size, root_hash=head.root_hash, timestamp_ms=timestamp_ms
        )
        return SignedTreeHead(
            tree_size=head.size,
            root_hash=head.root_hash,
            timestamp_ms=timestamp_ms,
            signature=self.private_key.sign(data),
            key_id=self.key_id,
        )

    def public_key_document(self) -> dict[str, str]:
        """What ``/api/ledger/public-key`` publishes."""
        public = self.public_key
        return {
            "algorithm": "Ed25519",
            "pem": public_key_pem(public),
            "raw_base64": base64.b64encode(public_key_raw(public)).decode("ascii"),
            "key_id_base64": base64.b64encode(self.key_id).decode("ascii"),
            "key_id_hex": self.key_id.hex(),
        }


def verify_tree_head(sth: SignedTreeHead, public_key: Ed25519PublicKey) -> bool:
    """True when ``sth`` was signed by ``public_key`` and names that key."""
    if sth.key_id != key_id(public_key):
        return False
    try:
        public_key.verify(sth.signature, sth.signed_data())
    except InvalidSignature:
        return False
    return True
