"""Ledger entries, leaves and the signed-tree-head wire format."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunting.infra.ledger import merkle
from yunting.infra.ledger.canonical import canonical_json
from yunting.infra.ledger.errors import InvalidEntryError
from yunting.infra.ledger.model import (
    Entry,
    NewEntry,
    SignedTreeHead,
    decode_digitally_signed,
    encode_digitally_signed,
    format_time,
    tree_head_signature_input,
    unb64,
)

AT = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
CASE = UUID("0b1e5f4c-3a2d-4c6b-9e8f-7a6b5c4d3e2f")
DOC = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def entry(**overrides: object) -> NewEntry:
    fields: dict[str, object] = {
        "kind": "SERVICE_ORDERED",
        "subject_id": "order-17",
        "content_sha256": DOC,
        "event": {"channel": "sms", "recipient": "原告 张伟", "attempt": 1},
        "at": AT,
        "case_id": CASE,
    }
    fields.update(overrides)
    return NewEntry(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subject",
    [
        "order-17",
        'say "hi" \\ 送达 é',
        "0b1e5f4c-3a2d-4c6b-9e8f-7a6b5c4d3e2f",
        "a/b:c@d.e_f",
        "a b+c",
    ],
)
def test_leaf_is_the_canonical_json_of_the_whole_entry(subject: str) -> None:
    leaf = entry(subject_id=subject).leaf(7)
    assert leaf == canonical_json(
        {
            "v": 1,
            "index": 7,
            "kind": "SERVICE_ORDERED",
            "subject_id": subject,
            "case_id": str(CASE),
            "content_sha256": DOC,
            "at": "2026-11-24T01:30:15.123456Z",  # normalised to UTC
            "event": {"attempt": 1, "channel": "sms", "recipient": "原告 张伟"},
        }
    )


def test_leaf_reads_back_into_the_same_entry() -> None:
    new = entry(case_id=None)
    read = Entry.from_leaf(new.leaf(3))
    assert (read.index, read.kind, read.subject_id, read.case_id) == (3, new.kind, "order-17", None)
    assert read.at == AT.astimezone(UTC)
    assert read.event == dict(new.event)
    assert read.leaf_hash == merkle.leaf_hash(new.leaf(3))


def test_content_hash_is_normalised_to_lowercase() -> None:
    assert entry(content_sha256=DOC.upper()).content_sha256 == DOC


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": ""}, "expected kind"),
        ({"kind": "has space"}, "expected kind"),
        ({"subject_id": ""}, "subject id"),
        ({"subject_id": "x" * 129}, "subject id"),
        ({"content_sha256": "abc"}, "64 hex digits"),
        ({"at": datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001 - the point of the test
        ({"event": {"fee": 12.5}}, "floats are not allowed"),
        ({"event": ["not", "a", "dict"]}, "expected event as a dict"),
        ({"event": {"blob": "x" * 70_000}}, "at most"),
        ({"case_id": "not-a-uuid"}, "expected case_id as a UUID"),
    ],
)
def test_invalid_entries_are_refused_before_any_io(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidEntryError, match=message):
        entry(**overrides)


@pytest.mark.parametrize(
    "leaf",
    [
        b'{"v":1}',
        canonical_json(
            {
                "v": 2,
                "index": 0,
                "kind": "k",
                "subject_id": "s",
                "case_id": None,
                "content_sha256": DOC,
                "at": "2026-11-24T01:30:15.123456Z",
                "event": {},
            }
        ),
        canonical_json(
            {
                "v": 1,
                "index": -1,
                "kind": "k",
                "subject_id": "s",
                "case_id": None,
                "content_sha256": DOC,
                "at": "2026-11-24T01:30:15.123456Z",
                "event": {},
            }
        ),
        entry().leaf(1).replace(b'"index":1', b'"index": 1'),
    ],
)
def test_malformed_leaves_are_refused(leaf: bytes) -> None:
    with pytest.raises(InvalidEntryError):
        Entry.from_leaf(leaf)


def test_tree_head_signature_input_is_rfc6962_tree_head_signature() -> None:
    root = bytes(range(32))
    data = tree_head_signature_input(tree_size=1000, root_hash=root, timestamp_ms=1_764_000_000_123)
    # version v1 (0), signature_type tree_hash (1), uint64 timestamp, uint64 tree_size, root.
    assert data[:2] == b"\x00\x01"
    assert struct.unpack(">QQ", data[2:18]) == (1_764_000_000_123, 1000)
    assert data[18:] == root
    assert len(data) == 50


def test_digitally_signed_uses_the_tls_ed25519_codepoint() -> None:
    signature = bytes(range(64))
    encoded = encode_digitally_signed(signature)
    assert encoded[:4] == b"\x08\x07\x00\x40"
    assert decode_digitally_signed(encoded) == signature
    with pytest.raises(ValueError, match="Ed25519"):
        decode_digitally_signed(b"\x04\x03" + encoded[2:])


def test_signed_tree_head_json_round_trips() -> None:
    sth = SignedTreeHead(
        tree_size=5,
        root_hash=bytes(32),
        timestamp_ms=1_764_000_000_000,
        signature=bytes(64),
        key_id=bytes(range(32)),
    )
    document = sth.to_json()
    assert set(document) >= {"tree_size", "timestamp", "sha256_root_hash", "tree_head_signature"}
    assert SignedTreeHead.from_json(document) == sth
    assert sth.timestamp == datetime(2025, 11, 24, 16, 0, tzinfo=UTC)


def test_unb64_accepts_only_canonical_base64() -> None:
    assert unb64(base64.b64encode(b"\x01\x02").decode()) == b"\x01\x02"
    for bad in ("AQI", "AQJ=", "AQI=\n", "A QI=", 5):
        with pytest.raises(ValueError, match="base64"):
            unb64(bad)


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_time_is_written_as_strftime_writes_it(at: datetime) -> None:
    assert format_time(at) == at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
