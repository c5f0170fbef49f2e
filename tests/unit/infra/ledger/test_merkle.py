"""RFC 6962 Merkle math against published vectors (see data/rfc6962_vectors.json for sources)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from yunting.infra.ledger import merkle

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text(encoding="utf-8")
)
REFERENCE = VECTORS["reference_tree"]
LEAVES = [bytes.fromhex(h) for h in REFERENCE["leaves"]]
ROOTS = [bytes.fromhex(h) for h in REFERENCE["roots_by_size_from_1"]]


class Tree:
    """An in-memory log built the way the database one is: compact range + completed nodes."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes: dict[merkle.Node, bytes] = {}
        self.range = merkle.CompactRange()
        for data in leaves:
            index = self.range.size
            leaf = merkle.leaf_hash(data)
            self.nodes[merkle.Node(0, index)] = leaf
            completed = self.range.append(leaf)
            for node, value in zip(merkle.completed_nodes(index), completed, strict=True):
                self.nodes[node] = value

    def lookup(self, node: merkle.Node) -> bytes:
        return self.nodes[node]


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_hasher_matches_published_vectors() -> None:
    hasher = VECTORS["hasher"]
    assert merkle.EMPTY_ROOT.hex() == hasher["empty_root"]
    assert merkle.leaf_hash(b"").hex() == hasher["empty_leaf"]
    assert merkle.leaf_hash(hasher["leaf"]["data_ascii"].encode()).hex() == hasher["leaf"]["hash"]
    node = hasher["node"]
    assert (
        merkle.node_hash(node["left_ascii"].encode(), node["right_ascii"].encode()).hex()
        == (node["hash"])
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_every_prefix_match_reference_tree(size: int) -> None:
    expected = ROOTS[size - 1]
    leaf_hashes = [merkle.leaf_hash(d) for d in LEAVES[:size]]
    tree = Tree(LEAVES[:size])

    assert merkle.root_from_leaf_hashes(leaf_hashes) == expected
    assert tree.range.root() == expected
    # A past root, rebuilt only from stored complete subtrees (how the database answers).
    assert merkle.root_hash(size, Tree(LEAVES).lookup) == expected


def test_empty_tree_root() -> None:
    assert merkle.root_hash(0, Tree([]).lookup) == merkle.EMPTY_ROOT
    assert merkle.CompactRange().root() == merkle.EMPTY_ROOT


def test_complete_subtrees_match_published_node_hashes() -> None:
    tree = Tree(LEAVES)
    for level, hashes in enumerate(REFERENCE["node_hashes_by_level"]):
        for index, value in enumerate(hashes):
            assert tree.nodes[merkle.Node(level, index)].hex() == value


@pytest.mark.parametrize(
    "case",
    [c for c in REFERENCE["inclusion_proofs"]["cases"] if c["leaf"] > 0],
    ids=lambda c: f"leaf{c['leaf']}-of-{c['size']}",
)
def test_inclusion_proofs_match_and_verify(case: dict[str, Any]) -> None:
    index, size = case["leaf"] - 1, case["size"]  # the source numbers leaves from 1
    expected = unhex(case["proof"])
    tree = Tree(LEAVES)
    leaf = merkle.leaf_hash(LEAVES[index])
    root = ROOTS[size - 1]

    assert merkle.inclusion_proof(index, size, tree.lookup) == expected
    assert merkle.root_from_inclusion_proof(index, size, leaf, expected) == root
    assert merkle.verify_inclusion(index=index, size=size, leaf=leaf, proof=expected, root=root)


@pytest.mark.parametrize(
    "case",
    REFERENCE["consistency_proofs"],
    ids=lambda c: f"{c['size1']}-to-{c['size2']}",
)
def test_consistency_proofs_match_and_verify(case: dict[str, Any]) -> None:
    first, second = case["size1"], case["size2"]
    expected = unhex(case["proof"])
    tree = Tree(LEAVES)

    assert merkle.consistency_proof(first, second, tree.lookup) == expected
    assert merkle.verify_consistency(
        first=first,
        second=second,
        first_root=ROOTS[first - 1],
        second_root=ROOTS[second - 1],
        proof=expected,
    )


def _b64list(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


@pytest.mark.parametrize(
    ("name", "case"),
    [(n, c) for n, c in VECTORS["testdata"].items() if n.startswith("inclusion/")],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_transparency_dev_inclusion_testdata(name: str, case: dict[str, Any]) -> None:
    ok = merkle.verify_inclusion(
        index=case["leafIdx"],
        size=case["treeSize"],
        leaf=base64.b64decode(case["leafHash"]),
        proof=_b64list(case["proof"]),
        root=base64.b64decode(case["root"]),
    )
    assert ok is not case["wantErr"], case["desc"]


@pytest.mark.parametrize(
    ("name", "case"),
    [(n, c) for n, c in VECTORS["testdata"].items() if n.startswith("consistency/")],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_transparency_dev_consistency_testdata(name: str, case: dict[str, Any]) -> None:
    ok = merkle.verify_consistency(
        first=case["size1"],
        second=case["size2"],
        first_root=base64.b64decode(case["root1"]),
        second_root=base64.b64decode(case["root2"]),
        proof=_b64list(case["proof"]),
    )
    assert ok is not case["wantErr"], case["desc"]


def _is_valid_subtree(start: int, end: int) -> bool:
    if start == 0:
        return True
    length = end - start
    bit_ceil = 1 << (length - 1).bit_length()
    return start % bit_ceil == 0


def test_subtree_hash_vector_up_to_130_leaves() -> None:
    """Every valid subtree hash of a 130-leaf tree, folded into one published SHA-256."""
    spec = VECTORS["subtree_vectors"]
    leaves = [bytes([i]) for i in range(spec["max_size"])]
    tree = Tree(leaves)
    rolling = hashlib.sha256()
    for end in range(1, spec["max_size"] + 1):
        for start in range(end):
            if _is_valid_subtree(start, end):
                value = merkle.range_hash(start, end, tree.lookup)
                rolling.update(f"[{start}, {end}) {value.hex()}\n".encode())
    assert rolling.hexdigest() == spec["subtree_hash"]["sha256"]


def test_subtree_inclusion_vector_up_to_130_leaves() -> None:
    """Every inclusion proof inside every valid subtree (for start 0 these are the RFC 6962
    proofs for every index of every size up to 130), folded into one published SHA-256."""
    spec = VECTORS["subtree_vectors"]
    size = spec["max_size"]
    full = Tree([bytes([i]) for i in range(size)])
    rolling = hashlib.sha256()
    for end in range(1, size + 1):
        for start in range(end):
            if not _is_valid_subtree(start, end):
                continue

            # A valid subtree has the shape of an RFC 6962 tree of end - start leaves, offset.
            def shifted(node: merkle.Node, start: int = start) -> bytes:
                return full.lookup(merkle.Node(node.level, node.index + (start >> node.level)))

            for index in range(start, end):
                proof = merkle.inclusion_proof(index - start, end - start, shifted)
                line = f"{index} [{start}, {end})" + "".join(f" {h.hex()}" for h in proof)
                rolling.update(line.encode() + b"\n")
    assert rolling.hexdigest() == spec["subtree_inclusion_proof"]["sha256"]


SIZES = range(1, 70)


def test_every_proof_up_to_70_leaves_verifies_against_the_reference_root() -> None:
    leaves = [f"leaf {i}".encode() for i in range(max(SIZES))]
    tree = Tree(leaves)
    leaf_hashes = [merkle.leaf_hash(d) for d in leaves]
    roots = {n: merkle.root_from_leaf_hashes(leaf_hashes[:n]) for n in SIZES}
    for size in SIZES:
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, tree.lookup)
            assert merkle.verify_inclusion(
                index=index, size=size, leaf=leaf_hashes[index], proof=proof, root=roots[size]
            )
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(first, size, tree.lookup)
            assert merkle.verify_consistency(
                first=first,
                second=size,
                first_root=roots[first],
                second_root=roots[size],
                proof=proof,
            )


@pytest.mark.parametrize("size", [2**20, 2**20 + 1, 10**6, 2**40 - 3, 10**12])
def test_proofs_need_logarithmically_many_stored_nodes(size: int) -> None:
    depth = (size - 1).bit_length()
    for index in (0, size // 3, size - 2, size - 1):
        assert len(merkle.inclusion_nodes(index, size)) <= 2 * depth
    for first in (1, size // 2 + 1, size - 1):
        assert len(merkle.consistency_nodes(first, size)) <= 3 * depth


def test_any_flipped_bit_in_a_proof_is_rejected() -> None:
    tree = Tree(LEAVES[:7])
    root = tree.range.root()
    for index in range(7):
        proof = merkle.inclusion_proof(index, 7, tree.lookup)
        leaf = merkle.leaf_hash(LEAVES[index])
        for position, element in enumerate(proof):
            for bit in range(0, 256, 7):
                bad = bytearray(element)
                bad[bit // 8] ^= 1 << (bit % 8)
                tampered = [*proof[:position], bytes(bad), *proof[position + 1 :]]
                assert not merkle.verify_inclusion(
                    index=index, size=7, leaf=leaf, proof=tampered, root=root
                )
        # The right path for the wrong position, size or leaf proves nothing.
        assert not merkle.verify_inclusion(
            index=(index + 1) % 7, size=7, leaf=leaf, proof=proof, root=root
        )
        for wrong_size in (14, 3):  # twice and half the size, as transparency-dev probes
            assert not merkle.verify_inclusion(
                index=index, size=wrong_size, leaf=leaf, proof=proof, root=root
            )
        assert not merkle.verify_inclusion(
            index=index, size=7, leaf=merkle.leaf_hash(b"forged"), proof=proof, root=root
        )


def test_consistency_rejects_a_rewritten_history() -> None:
    honest = Tree(LEAVES)
    rewritten = Tree([*LEAVES[:3], b"forged", *LEAVES[4:]])
    proof = merkle.consistency_proof(5, 8, rewritten.lookup)
    # The rewritten log cannot show that it extends the honest size-5 head.
    assert not merkle.verify_consistency(
        first=5,
        second=8,
        first_root=merkle.root_hash(5, honest.lookup),
        second_root=rewritten.range.root(),
        proof=proof,
    )


def test_compact_range_round_trips_through_bytes() -> None:
    tree = Tree(LEAVES[:7])
    packed = tree.range.to_bytes()
    assert len(packed) == 3 * merkle.HASH_SIZE  # 7 = 0b111: three subtrees
    restored = merkle.CompactRange.from_bytes(7, packed)
    assert restored.root() == ROOTS[6]
    restored.append(merkle.leaf_hash(LEAVES[7]))
    assert restored.root() == ROOTS[7]


def test_compact_range_refuses_a_wrong_number_of_hashes() -> None:
    with pytest.raises(merkle.ProofError, match="expected 2 subtree hashes"):
        merkle.CompactRange(6, [merkle.EMPTY_ROOT])


def test_invalid_proof_requests_raise() -> None:
    with pytest.raises(merkle.ProofError, match="index"):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(merkle.ProofError, match="first"):
        merkle.consistency_ranges(6, 5)
