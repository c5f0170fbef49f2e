"""Evidence-ledger data: entries, leaves, tree heads, proofs and log-check findings. No I/O.

A leaf is the canonical JSON (RFC 8785, see ``canonical``) of one entry, including its index; its
Merkle leaf hash is SHA-256(0x00 || leaf) (RFC 6962 §2.1). A signed tree head is RFC 6962 §3.5's
``TreeHeadSignature`` (version v1, signature_type tree_hash, timestamp in ms, tree_size, root)
signed with Ed25519; on the wire its signature is a TLS ``DigitallySigned`` whose algorithm is
ed25519 (0x0807, RFC 8422 §5.1.3), so CT tooling can parse it.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from yunting.infra.ledger import merkle
from yunting.infra.ledger.canonical import CanonicalJsonError, canonical_json, parse_canonical
from yunting.infra.ledger.errors import InvalidEntryError

LEAF_VERSION = 1
MAX_EVENT_BYTES = 64 * 1024  # evidence is referenced by hash; the event describes it, briefly
KIND_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MAX_SUBJECT_ID = 128
# A subject id JSON writes as it is, in quotes (ids, UUIDs): no canonical encoder needed.
_PLAIN_SUBJECT = re.compile(r"[A-Za-z0-9._:@/-]+")

# RFC 6962 §3.5 TreeHeadSignature: Version v1 = 0, SignatureType tree_hash = 1.
_STH_VERSION_V1 = 0
_STH_SIGNATURE_TYPE_TREE_HASH = 1
# TLS SignatureAndHashAlgorithm for Ed25519 (RFC 8422 §5.1.3): hash "Intrinsic" (8), ed25519 (7).
ED25519_SIGNATURE_SCHEME = b"\x08\x07"
ED25519_SIGNATURE_SIZE = 64


def format_time(value: datetime) -> str:
    """The one textual form of a time in a leaf: UTC, microseconds, 'Z'."""
    if value.tzinfo is None:
        raise InvalidEntryError("expected a timezone-aware datetime, got a naive one")
    utc = value.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # no zero padding of the year, as ever
    # The same text as the strftime above, at half its cost (every entry has a time).
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def normalize_sha256(value: str) -> str:
    """Lowercase hex SHA-256, or ``InvalidEntryError``."""
    if not isinstance(value, str):
        raise InvalidEntryError(f"expected a hex SHA-256 string, got {type(value).__name__}")
    lowered = value.strip().lower()
    if not SHA256_HEX.fullmatch(lowered):
        raise InvalidEntryError(f"expected 64 hex digits of SHA-256, got {value[:80]!r}")
    return lowered


@dataclass(frozen=True, slots=True)
class NewEntry:
    """What a caller appends. Validated on construction, so a ``NewEntry`` always fits a leaf."""

    kind: str
    subject_id: str
    content_sha256: str
    event: Mapping[str, Any]
    at: datetime
    case_id: UUID | None = None
    event_json: bytes = field(init=False, repr=False, compare=False)
    leaf_parts: tuple[bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not KIND_PATTERN.fullmatch(self.kind):
            raise InvalidEntryError(
                f"expected kind like 'hearing.state_changed' (letters, digits, _.:-, at most "
                f"64), got {self.kind!r}"
            )
        subject = str(self.subject_id)
        if not subject or len(subject) > MAX_SUBJECT_ID or not subject.isprintable():
            raise InvalidEntryError(
                f"expected a printable subject id of 1..{MAX_SUBJECT_ID} characters"
            )
        object.__setattr__(self, "subject_id", subject)
        object.__setattr__(self, "content_sha256", normalize_sha256(self.content_sha256))
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise InvalidEntryError("expected 'at' as a timezone-aware datetime")
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        if self.case_id is not None and not isinstance(self.case_id, UUID):
            raise InvalidEntryError(f"expected case_id as a UUID, got {type(self.case_id)}")
        if not isinstance(self.event, Mapping):
            raise InvalidEntryError(f"expected event as a dict, got {type(self.event).__name__}")
        try:
            encoded = canonical_json(self.event)
        except CanonicalJsonError as e:
            raise InvalidEntryError(f"event is not canonical JSON: {e}") from e
        if len(encoded) > MAX_EVENT_BYTES:
            raise InvalidEntryError(
                f"expected an event of at most {MAX_EVENT_BYTES} bytes, got {len(encoded)}"
            )
        object.__setattr__(self, "event_json", encoded)
        object.__setattr__(self, "leaf_parts", _leaf_parts(self))

    def leaf(self, index: int) -> bytes:
        """The exact bytes hashed into the log for this entry at ``index``.

        Equal to ``canonical_json`` of the whole v1 leaf object (a unit test holds it to that);
        everything but the index is encoded once, at construction, outside the append lock.
        """
        return self._leaf_head + str(index).encode("ascii") + self._leaf_tail

    @property
    def _leaf_head(self) -> bytes:
        return self.leaf_parts[0]

    @property
    def _leaf_tail(self) -> bytes:
        return self.leaf_parts[1]


def _leaf_parts(entry: NewEntry) -> tuple[bytes, bytes]:
    # Members in RFC 8785 order: at, case_id, content_sha256, event, index, kind, subject_id, v.
    # at, case_id, content_sha256 and kind are validated to characters JSON never escapes; the
    # subject id may contain anything printable, so it goes through the canonical encoder.
    case = "null" if entry.case_id is None else f'"{entry.case_id}"'
    head = (
        f'{{"at":"{format_time(entry.at)}","case_id":{case},'
        f'"content_sha256":"{entry.content_sha256}","event":'
    ).encode("ascii")
    subject = (
        b'"' + entry.subject_id.encode("ascii") + b'"'
        if _PLAIN_SUBJECT.fullmatch(entry.subject_id)
        else canonical_json(entry.subject_id)
    )
    tail = b',"kind":"' + entry.kind.encode("ascii") + b'","subject_id":' + subject
    return head + entry.event_json + b',"index":', tail + b',"v":%d}' % LEAF_VERSION


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as the log holds it, with the exact leaf bytes that were hashed."""

    index: int
    kind: str
    subject_id: str
    case_id: UUID | None
    content_sha256: str
    at: datetime
    event: dict[str, Any]
    leaf: bytes
    leaf_hash: bytes

    @classmethod
    def from_leaf(cls, leaf: bytes) -> Entry:
        """Read a leaf back; ``InvalidEntryError`` unless it is a well-formed v1 leaf."""
        try:
            data = parse_canonical(leaf)
        except CanonicalJsonError as e:
            raise InvalidEntryError(f"leaf is not canonical JSON: {e}") from e
        expected = {"at", "case_id", "content_sha256", "event", "index", "kind", "subject_id", "v"}
        if not isinstance(data, dict) or set(data) != expected:
            raise InvalidEntryError("leaf does not have the v1 fields")
        if data["v"] != LEAF_VERSION:
            raise InvalidEntryError(f"expected leaf version {LEAF_VERSION}, got {data['v']!r}")
        index = data["index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidEntryError("leaf index must be a non-negative integer")
        if not isinstance(data["event"], dict):
            raise InvalidEntryError("leaf event must be an object")
        try:
            at = parse_time(data["at"])
            case_id = None if data["case_id"] is None else UUID(data["case_id"])
        except (TypeError, ValueError) as e:
            raise InvalidEntryError(f"leaf has a malformed field: {e}") from e
        return cls(
            index=index,
            kind=str(data["kind"]),
            subject_id=str(data["subject_id"]),
            case_id=case_id,
            content_sha256=normalize_sha256(data["content_sha256"]),
            at=at,
            event=data["event"],
            leaf=leaf,
            leaf_hash=merkle.leaf_hash(leaf),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "subject_id": self.subject_id,
            "case_id": None if self.case_id is None else str(self.case_id),
            "content_sha256": self.content_sha256,
            "at": format_time(self.at),
            "event": self.event,
            "leaf_input": b64(self.leaf),
            "leaf_hash": b64(self.leaf_hash),
        }


@dataclass(frozen=True, slots=True)
class TreeHead:
    size: int
    root_hash: bytes


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A tree head the log committed to, with its Ed25519 signature (RFC 6962 §3.5)."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    signature: bytes  # the raw 64-byte Ed25519 signature over ``signed_data()``
    key_id: bytes  # RFC 6962 §3.2 LogID: SHA-256 of the public key's DER SubjectPublicKeyInfo

    def signed_data(self) -> bytes:
        return tree_head_signature_input(
            tree_size=self.tree_size, root_hash=self.root_hash, timestamp_ms=self.timestamp_ms
        )

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    def to_json(self) -> dict[str, Any]:
        """CT v1 ``get-sth`` field names (RFC 6962 §4.3), plus the key id and the plain time."""
        return {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp_ms,
            "sha256_root_hash": b64(self.root_hash),
            "tree_head_signature": b64(encode_digitally_signed(self.signature)),
            "log_id": b64(self.key_id),
            "signature_algorithm": "ed25519",
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SignedTreeHead:
        """Inverse of ``to_json``; ``ValueError`` on anything malformed."""
        tree_size = data["tree_size"]
        timestamp = data["timestamp"]
        if not isinstance(tree_size, int) or not isinstance(timestamp, int):
            raise ValueError("tree_size and timestamp must be integers")
        root = unb64(data["sha256_root_hash"])
        if len(root) != merkle.HASH_SIZE:
            raise ValueError("sha256_root_hash must be 32 bytes")
        return cls(
            tree_size=tree_size,
            root_hash=root,
            timestamp_ms=timestamp,
            signature=decode_digitally_signed(unb64(data["tree_head_signature"])),
            key_id=unb64(data["log_id"]),
        )


def tree_head_signature_input(*, tree_size: int, root_hash: bytes, timestamp_ms: int) -> bytes:
    """RFC 6962 §3.5 ``TreeHeadSignature``: the 50 bytes that are signed."""
    if len(root_hash) != merkle.HASH_SIZE:
        raise ValueError(f"expected a 32-byte root hash, got {len(root_hash)}")
    return (
        struct.pack(
            ">BBQQ", _STH_VERSION_V1, _STH_SIGNATURE_TYPE_TREE_HASH, timestamp_ms, tree_size
        )
        + root_hash
    )


def encode_digitally_signed(signature: bytes) -> bytes:
    """TLS ``DigitallySigned`` (RFC 5246 §4.7): algorithm, uint16 length, signature."""
    return ED25519_SIGNATURE_SCHEME + struct.pack(">H", len(signature)) + signature


def decode_digitally_signed(data: bytes) -> bytes:
    if len(data) != 4 + ED25519_SIGNATURE_SIZE or data[:2] != ED25519_SIGNATURE_SCHEME:
        raise ValueError("expected an Ed25519 DigitallySigned structure")
    (length,) = struct.unpack(">H", data[2:4])
    if length != ED25519_SIGNATURE_SIZE:
        raise ValueError("DigitallySigned length does not match an Ed25519 signature")
    return data[4:]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """CT v1 ``get-proof-by-hash`` field names (RFC 6962 §4.5), plus the leaf hash."""
        return {
            "leaf_index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": b64(self.leaf_hash),
            "audit_path": [b64(h) for h in self.audit_path],
        }

    def verify(self, root_hash: bytes) -> bool:
        return merkle.verify_inclusion(
            index=self.index,
            size=self.tree_size,
            leaf=self.leaf_hash,
            proof=self.audit_path,
            root=root_hash,
        )


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    first: int
    second: int
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        """CT v1 ``get-sth-consistency`` (RFC 6962 §4.4), plus the two sizes."""
        return {
            "first": self.first,
            "second": self.second,
            "consistency": [b64(h) for h in self.path],
        }

    def verify(self, first_root: bytes, second_root: bytes) -> bool:
        return merkle.verify_consistency(
            first=self.first,
            second=self.second,
            first_root=first_root,
            second_root=second_root,
            proof=self.path,
        )


class IssueKind(StrEnum):
    """What ``verify`` can find wrong with the stored log."""

    MISSING_ENTRY = "missing_entry"  # a gap in the indices, or fewer entries than signed
    MISPLACED_ENTRY = "misplaced_entry"  # a leaf that says it belongs at another index
    ALTERED_ENTRY = "altered_entry"  # leaf bytes, leaf hash or columns disagree
    ALTERED_SUBTREE = "altered_subtree"  # a cached subtree hash that is not what it should be
    TREE_HEAD_MISMATCH = "tree_head_mismatch"  # a signed root the entries no longer produce
    BAD_SIGNATURE = "bad_signature"  # a stored tree head whose signature does not verify
    UNKNOWN_KEY = "unknown_key"  # signed by a key that is not this log's
    HEAD_MISMATCH = "head_mismatch"  # the head row disagrees with the entries


@dataclass(frozen=True, slots=True)
class LogIssue:
    kind: IssueKind
    detail: str
    index: int | None = None

    def __str__(self) -> str:
        where = "" if self.index is None else f" at index {self.index}"
        return f"{self.kind}{where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class LogReport:
    size: int
    root_hash: bytes
    tree_heads_checked: int
    issues: tuple[LogIssue, ...]

    @property
    def ok(self) -> bool:
        return not self.issues


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    """Strict standard base64 (no whitespace, correct padding), or ``ValueError``."""
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError as e:
        raise ValueError(f"invalid base64: {e}") from e
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("base64 is not in canonical form")
    return data
