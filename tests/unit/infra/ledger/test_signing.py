"""Ed25519 tree-head signatures."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from yunting.infra.ledger import merkle
from yunting.infra.ledger.model import TreeHead
from yunting.infra.ledger.signing import (
    TreeHeadSigner,
    key_id,
    load_public_key,
    verify_tree_head,
)

# RFC 8032 §7.1 TEST 1 secret key: signatures are deterministic, so the bytes are stable.
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
HEAD = TreeHead(size=8, root_hash=merkle.EMPTY_ROOT)


def signer() -> TreeHeadSigner:
    return TreeHeadSigner(Ed25519PrivateKey.from_private_bytes(SEED))


def test_signature_verifies_over_the_rfc6962_structure() -> None:
    sth = signer().sign(HEAD, timestamp_ms=1_764_000_000_000)
    public = signer().public_key
    public.verify(sth.signature, sth.signed_data())  # raises if not
    assert verify_tree_head(sth, public)


def test_any_change_to_a_signed_head_breaks_the_signature() -> None:
    sth = signer().sign(HEAD, timestamp_ms=1_764_000_000_000)
    public = signer().public_key
    for changed in (
        dataclasses.replace(sth, tree_size=9),
        dataclasses.replace(sth, timestamp_ms=sth.timestamp_ms + 1),
        dataclasses.replace(sth, root_hash=merkle.leaf_hash(b"")),
        dataclasses.replace(sth, signature=bytes([sth.signature[0] ^ 1]) + sth.signature[1:]),
    ):
        assert not verify_tree_head(changed, public)


def test_a_head_signed_by_another_key_does_not_verify() -> None:
    other = TreeHeadSigner(Ed25519PrivateKey.generate())
    sth = other.sign(HEAD, timestamp_ms=1)
    assert not verify_tree_head(sth, signer().public_key)
    # Even with our key id pasted in, the signature gives it away.
    assert not verify_tree_head(
        dataclasses.replace(sth, key_id=signer().key_id), signer().public_key
    )


def test_key_id_is_sha256_of_the_subject_public_key_info() -> None:
    public = signer().public_key
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_id(public) == hashlib.sha256(der).digest()


def test_published_key_document_loads_back_in_every_form() -> None:
    document = signer().public_key_document()
    # RFC 8032 §7.1 TEST 1 public key.
    assert base64.b64decode(document["raw_base64"]).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    for form in (
        document["pem"].encode(),
        base64.b64decode(document["raw_base64"]),
    ):
        assert key_id(load_public_key(form)).hex() == document["key_id_hex"]
