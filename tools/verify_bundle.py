#!/usr/bin/env python3
"""Check a Yunting evidence bundle offline. Needs only Python 3.11+ and `cryptography`.

    python3 verify_bundle.py bundle.zip [--key-id HEX | --public-key FILE]

This is deliberately a second, independent implementation of the checks in
``yunting/infra/ledger/bundle.py`` (it imports nothing from Yunting), so a party can read it in
one sitting and need not trust the court's software. For each item it prints OK or FAIL and
why, naming the file; the exit status is 0 only if the tree head and every item verify.

What is checked (see docs/ledger.md):
  * every JSON file is canonical JSON (RFC 8785), so no byte can change unnoticed;
  * tree-head.json is signed with Ed25519 over RFC 6962 section 3.5's TreeHeadSignature by the
    key in public-key.pem (and that key is the one you name with --key-id / --public-key);
  * for each item: SHA-256(0x00 || item bytes) walked up the audit path (RFC 9162 section
    2.1.3.2) gives the signed root.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "yunting-evidence-bundle"
LEAF_FIELDS = {"at", "case_id", "content_sha256", "event", "index", "kind", "subject_id", "v"}
PROOF_FIELDS = {"audit_path", "leaf_hash", "leaf_index", "tree_size"}
ED25519_DIGITALLY_SIGNED = b"\x08\x07\x00\x40"  # RFC 8422: ed25519, then uint16 length 64


class InvalidError(Exception):
    pass


# --- canonical JSON (RFC 8785, integers only) ------------------------------------------------


def _canonical(value: Any) -> str:
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            raise InvalidError("integer out of range")
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_canonical(k) + ":" + _canonical(value[k]) for k in keys) + "}"
    raise InvalidError(f"unexpected JSON value {type(value).__name__}")


def _no_float(text: str) -> Any:
    raise InvalidError(f"floats are not allowed ({text})")


def parse_canonical(data: bytes) -> Any:
    try:
        value = json.loads(data.decode("utf-8"), parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidError(f"not valid JSON ({e})") from e
    try:
        canonical = _canonical(value).encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidError("invalid Unicode") from e
    if canonical != data:
        raise InvalidError("not in canonical JSON form (changed?)")
    return value


def b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise InvalidError("expected a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidError(f"invalid base64 ({e})") from e
    if base64.b64encode(data).decode("ascii") != text:
        raise InvalidError("base64 not in canonical form")
    return data


# --- RFC 6962 / RFC 9162 ---------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise InvalidError(f"leaf index {index} is not inside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if len(p) != 32:
            raise InvalidError("audit path element is not 32 bytes")
        if sn == 0:
            raise InvalidError("audit path is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidError("audit path is too short")
    return r


# --- the bundle --------------------------------------------------------------------------------


@dataclass
class TreeHead:
    tree_size: int
    timestamp_ms: int
    root: bytes
    signature: bytes
    key_id: bytes


@dataclass
class Result:
    item: str
    ok: bool = False
    problem: str = ""


@dataclass
class Report:
    key_id: str = ""
    tree_head: TreeHead | None = None
    problems: list[str] = field(default_factory=list)
    items: list[Result] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.items)


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise InvalidError(f"{name}: missing") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise InvalidError(f"{name}: unreadable ({e})") from e


def _load_key(data: bytes) -> Ed25519PublicKey:
    try:
        if len(data) == 32:
            return Ed25519PublicKey.from_public_bytes(data)
        if data.strip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data.strip())
        else:
            key = serialization.load_der_public_key(data)
    except ValueError as e:
        raise InvalidError(f"not a public key ({e})") from e
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidError("not an Ed25519 public key")
    return key


def _key_id(key: Ed25519PublicKey) -> bytes:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def _tree_head(data: bytes) -> TreeHead:
    raw = parse_canonical(data)
    try:
        size, timestamp = raw["tree_size"], raw["timestamp"]
        root = b64(raw["sha256_root_hash"])
        signed = b64(raw["tree_head_signature"])
        key_id = b64(raw["log_id"])
    except (KeyError, TypeError) as e:
        raise InvalidError(f"missing field {e}") from e
    if not isinstance(size, int) or not isinstance(timestamp, int) or len(root) != 32:
        raise InvalidError("malformed tree head")
    if len(signed) != 68 or signed[:4] != ED25519_DIGITALLY_SIGNED:
        raise InvalidError("tree_head_signature is not an Ed25519 DigitallySigned")
    return TreeHead(size, timestamp, root, signed[4:], key_id)


def verify(data: bytes, *, trusted_key: Ed25519PublicKey | None = None) -> Report:
    report = Report()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        report.problems.append(f"not a zip archive ({e})")
        return report
    names = set(archive.namelist())

    listed: dict[str, int] = {}
    try:
        manifest = parse_canonical(_read(archive, "manifest.json"))
        if manifest.get("format") != FORMAT or manifest.get("version") != 1:
            raise InvalidError("not a version 1 Yunting evidence bundle")
        for item in manifest["items"]:
            listed[item["item"]] = item["index"]
    except (InvalidError, KeyError, TypeError, AttributeError) as e:
        report.problems.append(f"manifest.json: {e}")

    key: Ed25519PublicKey | None = None
    try:
        key = _load_key(_read(archive, "public-key.pem"))
    except InvalidError as e:
        report.problems.append(f"public-key.pem: {e}")
    if trusted_key is not None:
        if key is not None and _key_id(key) != _key_id(trusted_key):
            report.problems.append("public-key.pem: not the key you trust")
        key = trusted_key
    if key is not None:
        report.key_id = _key_id(key).hex()

    sth: TreeHead | None = None
    try:
        sth = _tree_head(_read(archive, "tree-head.json"))
        report.tree_head = sth
        if key is None:
            raise InvalidError("no public key to check the signature with")
        if sth.key_id != _key_id(key):
            raise InvalidError("signed by a different key than the one given")
        signed = struct.pack(">BBQQ", 0, 1, sth.timestamp_ms, sth.tree_size) + sth.root
        try:
            key.verify(sth.signature, signed)
        except InvalidSignature:
            raise InvalidError("signature does not verify") from None
    except InvalidError as e:
        report.problems.append(f"tree-head.json: {e}")

    items = sorted(n for n in names if n.startswith("items/") and n.endswith(".json"))
    for name in sorted(set(items) | set(listed)):
        if listed and name not in listed:
            report.problems.append(f"{name}: not listed in manifest.json")
        result = Result(item=name)
        try:
            _check_item(archive, name, listed.get(name), sth)
            result.ok = True
        except InvalidError as e:
            result.problem = str(e)
        report.items.append(result)
    return report


def _check_item(
    archive: zipfile.ZipFile, name: str, listed_index: int | None, sth: TreeHead | None
) -> None:
    proof_name = "proofs/" + name.removeprefix("items/")
    leaf = _read(archive, name)
    try:
        proof = parse_canonical(_read(archive, proof_name))
        if not isinstance(proof, dict) or set(proof) != PROOF_FIELDS:
            raise InvalidError("unexpected fields")
        index, size = proof["leaf_index"], proof["tree_size"]
        if not isinstance(index, int) or not isinstance(size, int):
            raise InvalidError("leaf_index and tree_size must be integers")
        claimed = b64(proof["leaf_hash"])
        path = [b64(p) for p in proof["audit_path"]]
    except InvalidError as e:
        raise InvalidError(f"{proof_name}: {e}") from e
    try:
        entry = parse_canonical(leaf)
        if not isinstance(entry, dict) or set(entry) != LEAF_FIELDS or entry["v"] != 1:
            raise InvalidError("not a version 1 ledger entry")
    except InvalidError as e:
        raise InvalidError(f"the item was changed: {e}") from e
    if not entry["index"] == index == (index if listed_index is None else listed_index):
        raise InvalidError(
            f"index disagrees: item {entry['index']}, proof {index}, manifest {listed_index}"
        )
    if sth is None:
        raise InvalidError("no readable tree head to check against")
    if size != sth.tree_size:
        raise InvalidError(
            f"{proof_name}: proof is for {size} entries, tree head for {sth.tree_size}"
        )

    def proves(hash_: bytes) -> bool:
        try:
            return root_from_inclusion_proof(index, size, hash_, path) == sth.root
        except InvalidError:
            return False

    actual = leaf_hash(leaf)
    if proves(actual):
        if actual != claimed:
            raise InvalidError(f"{proof_name}: its leaf_hash field was changed")
        return
    if actual != claimed and proves(claimed):
        raise InvalidError("the item's bytes were changed: its hash is no longer the logged one")
    raise InvalidError(f"{proof_name}: the audit path does not lead to the signed root")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="the evidence bundle (.zip)")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument("--key-id", help="hex key id the court publishes (SHA-256 of the key)")
    trust.add_argument("--public-key", help="the court's public key file (PEM or raw 32 bytes)")
    args = parser.parse_args(argv)

    with open(args.bundle, "rb") as f:
        data = f.read()
    trusted = None
    if args.public_key:
        with open(args.public_key, "rb") as f:
            trusted = _load_key(f.read())
    report = verify(data, trusted_key=trusted)
    if args.key_id and report.key_id != args.key_id.strip().lower():
        report.problems.append(f"key id is {report.key_id}, not the {args.key_id} you trust")

    print(f"key id: {report.key_id or '-'}")
    if report.tree_head is not None:
        print(
            f"tree head: {report.tree_head.tree_size} entries, root {report.tree_head.root.hex()}"
        )
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    for result in report.items:
        print(f"OK   {result.item}" if result.ok else f"FAIL {result.item}: {result.problem}")
    proven = sum(r.ok for r in report.items)
    verdict = "verified" if report.ok else "NOT verified"
    print(f"bundle {verdict}: {proven}/{len(report.items)} items proven")
    if not (args.key_id or args.public_key):
        print("note: compare the key id with the one the court publishes (/api/ledger/public-key)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
