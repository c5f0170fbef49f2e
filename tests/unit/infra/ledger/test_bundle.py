"""Evidence bundles: built and checked with no database, by our verifier and the standalone one.

A court must be able to say *which* item of a bundle fails when one byte is changed, so these
tests change every byte of an item and of a proof, one at a time.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from yunting.infra.ledger import merkle
from yunting.infra.ledger.bundle import (
    BundleItem,
    build_bundle,
    item_path,
    proof_path,
    verify_bundle,
)
from yunting.infra.ledger.model import InclusionProof, NewEntry, TreeHead
from yunting.infra.ledger.signing import TreeHeadSigner

ROOT = Path(__file__).resolve().parents[4]
CASE = UUID("0b1e5f4c-3a2d-4c6b-9e8f-7a6b5c4d3e2f")
AT = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
SIGNER = TreeHeadSigner(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def load_standalone() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "verify_bundle", ROOT / "tools" / "verify_bundle.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_bundle"] = module
    spec.loader.exec_module(module)
    return module


STANDALONE = load_standalone()


def make_bundle(n: int = 11, in_case: tuple[int, ...] = (2, 5, 10)) -> bytes:
    """A log of ``n`` entries, a signed head over all of it, and a bundle of some of them."""
    leaves = []
    nodes: dict[merkle.Node, bytes] = {}
    tree = merkle.CompactRange()
    for index in range(n):
        leaf = NewEntry(
            kind="DOCUMENT_SERVED",
            subject_id=f"doc-{index}",
            content_sha256=f"{index:064x}",
            event={"n": index, "说明": "判决书"},
            at=AT,
            case_id=CASE if index in in_case else None,
        ).leaf(index)
        leaves.append(leaf)
        nodes[merkle.Node(0, index)] = merkle.leaf_hash(leaf)
        for node, value in zip(
            merkle.completed_nodes(index), tree.append(merkle.leaf_hash(leaf)), strict=True
        ):
            nodes[node] = value
    sth = SIGNER.sign(TreeHead(size=n, root_hash=tree.root()), timestamp_ms=1_764_000_000_000)
    items = [
        BundleItem(
            leaf=leaves[i],
            proof=InclusionProof(
                index=i,
                tree_size=n,
                leaf_hash=nodes[merkle.Node(0, i)],
                audit_path=tuple(merkle.inclusion_proof(i, n, nodes.__getitem__)),
            ),
        )
        for i in in_case
    ]
    return build_bundle(
        case_id=CASE,
        created_at=AT,
        tree_head=sth,
        public_key_pem=SIGNER.public_key_document()["pem"],
        public_key_url="https://court.example/api/ledger/public-key",
        items=items,
    )


BUNDLE = make_bundle()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(data: bytes, name: str, content: bytes) -> bytes:
    files = members(data)
    files[name] = content
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, value in files.items():
            archive.writestr(member, value)
    return buffer.getvalue()


def failures(data: bytes) -> tuple[list[str], list[str]]:
    """Failed item names per verifier (ours, standalone)."""
    ours = verify_bundle(data)
    theirs = STANDALONE.verify(data)
    return (
        [r.item for r in ours.items if not r.ok],
        [r.item for r in theirs.items if not r.ok],
    )


def test_an_untouched_bundle_verifies_with_both_verifiers() -> None:
    ours = verify_bundle(BUNDLE)
    assert ours.ok, ours.lines()
    assert [r.index for r in ours.items] == [2, 5, 10]
    assert ours.key_id == SIGNER.key_id
    theirs = STANDALONE.verify(BUNDLE)
    assert theirs.ok, theirs.problems
    assert [r.item for r in theirs.items] == [item_path(i) for i in (2, 5, 10)]


def test_bundle_layout() -> None:
    names = set(members(BUNDLE))
    assert {"manifest.json", "tree-head.json", "public-key.pem", "README.txt"} <= names
    assert {item_path(5), proof_path(5)} <= names


@pytest.mark.parametrize("target", [item_path(5), proof_path(5)])
def test_every_single_byte_change_names_the_item(target: str) -> None:
    original = members(BUNDLE)[target]
    for position in range(len(original)):
        changed = bytearray(original)
        changed[position] ^= 0x01
        ours, theirs = failures(rezip(BUNDLE, target, bytes(changed)))
        assert ours == [item_path(5)], f"byte {position}: ours reported {ours}"
        assert theirs == [item_path(5)], f"byte {position}: standalone reported {theirs}"


def test_the_report_says_whether_the_item_or_the_proof_changed() -> None:
    item = bytearray(members(BUNDLE)[item_path(10)])
    item[item.index(b"doc-10")] = ord("D")
    report = verify_bundle(rezip(BUNDLE, item_path(10), bytes(item)))
    (failed,) = report.failed_items
    assert "item" in failed.problem
    assert failed.item == item_path(10)

    proof = members(BUNDLE)[proof_path(2)].decode()
    path_start = proof.index('"audit_path":["') + len('"audit_path":["')
    flipped = "A" if proof[path_start] != "A" else "B"
    proof = proof[:path_start] + flipped + proof[path_start + 1 :]
    report = verify_bundle(rezip(BUNDLE, proof_path(2), proof.encode()))
    (failed,) = report.failed_items
    assert failed.item == item_path(2)
    assert failed.problem.startswith(proof_path(2))


def test_a_flipped_byte_in_the_zip_itself_names_the_item() -> None:
    # Flip a byte inside the compressed data of one member: zip's CRC-32 catches it.
    with zipfile.ZipFile(io.BytesIO(BUNDLE)) as archive:
        info = archive.getinfo(item_path(5))
    data = bytearray(BUNDLE)
    header = info.header_offset
    name_len = int.from_bytes(data[header + 26 : header + 28], "little")
    extra_len = int.from_bytes(data[header + 28 : header + 30], "little")
    data[header + 30 + name_len + extra_len + info.compress_size // 2] ^= 0x01
    ours, theirs = failures(bytes(data))
    assert ours == [item_path(5)]
    assert theirs == [item_path(5)]


def test_a_changed_tree_head_is_reported() -> None:
    head = members(BUNDLE)["tree-head.json"].replace(b'"tree_size":11', b'"tree_size":12')
    report = verify_bundle(rezip(BUNDLE, "tree-head.json", head))
    assert not report.ok
    assert any(p.startswith("tree-head.json: signature") for p in report.problems)
    standalone = STANDALONE.verify(rezip(BUNDLE, "tree-head.json", head))
    assert any(p.startswith("tree-head.json") for p in standalone.problems)


def test_a_bundle_resigned_with_another_key_fails_against_the_trusted_key() -> None:
    forger = TreeHeadSigner(Ed25519PrivateKey.generate())
    forged = rezip(BUNDLE, "public-key.pem", forger.public_key_document()["pem"].encode())
    report = verify_bundle(forged, trusted_key=SIGNER.public_key)
    assert report.ok is False
    assert any("not the trusted key" in p for p in report.problems)
    assert not STANDALONE.verify(forged, trusted_key=SIGNER.public_key).ok


def test_a_removed_item_is_reported_but_the_others_stay_proven() -> None:
    files = members(BUNDLE)
    del files[item_path(5)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in files.items():
            archive.writestr(name, value)
    ours, theirs = failures(buffer.getvalue())
    assert ours == theirs == [item_path(5)]


def test_standalone_script_runs_with_only_its_own_imports(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    good.write_bytes(BUNDLE)
    bad = tmp_path / "bad.zip"
    proof = bytearray(members(BUNDLE)[proof_path(10)])
    proof[-5] ^= 0x01
    bad.write_bytes(rezip(BUNDLE, proof_path(10), bytes(proof)))
    script = str(ROOT / "tools" / "verify_bundle.py")
    # -I: isolated mode, so the script cannot quietly import Yunting from the source tree.
    ok = subprocess.run(
        [sys.executable, "-I", script, str(good), "--key-id", SIGNER.key_id.hex()],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "bundle verified: 3/3 items proven" in ok.stdout
    failed = subprocess.run(
        [sys.executable, "-I", script, str(bad)], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert f"FAIL {item_path(10)}" in failed.stdout
    wrong_key = subprocess.run(
        [sys.executable, "-I", script, str(good), "--key-id", "00" * 32],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong_key.returncode == 1
    assert "not the" in wrong_key.stdout
