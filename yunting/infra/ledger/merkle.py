"""Merkle tree hashing and proofs exactly as RFC 6962 §2.1 / RFC 9162 §2.1. Pure: no I/O.

The log stores only leaf hashes and the hashes of *complete* (perfect, aligned) subtrees. Every
hash a proof needs is either such a node or the hash of a right-border range ``[start, size)``,
which is the right-to-left fold of the perfect subtrees that cover the range. So proof generation
is split in two: ``*_nodes`` says which stored nodes are needed (O(log n) of them), the caller
fetches them in one query, and ``*_proof`` builds the proof from a lookup function.

Node addressing follows transparency-dev/merkle: ``Node(level, index)`` covers leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 nodes are leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"  # RFC 6962 §2.1: MTH({d(0)}) = SHA-256(0x00 || d(0))
NODE_PREFIX = b"\x01"  # RFC 6962 §2.1: SHA-256(0x01 || MTH(left) || MTH(right))
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()


@dataclass(frozen=True, order=True, slots=True)
class Node:
    """A complete subtree: leaves ``[index << level, (index + 1) << level)``."""

    level: int
    index: int

    @property
    def start(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level

    @property
    def completed_by(self) -> int:
        """Index of the leaf whose append completed this subtree (its last leaf)."""
        return self.end - 1


NodeLookup = Callable[[Node], bytes]


class ProofError(ValueError):
    """A proof was requested for sizes or indices that do not describe one."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 §2.1 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (RFC 6962 §2.1's k), for n > 1."""
    if n < 2:
        raise ProofError(f"expected a size of at least 2 to split, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, by the RFC's recursive definition (reference use)."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = split_point(n)
    return node_hash(root_from_leaf_hashes(hashes[:k]), root_from_leaf_hashes(hashes[k:]))


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees covering ``[start, end)``, left to right, largest first.

    Valid for the ranges that occur inside an RFC 6962 tree (``start`` a multiple of the
    first piece's size), which is every range the proofs below ask for.
    """
    if not 0 <= start < end:
        raise ProofError(f"expected 0 <= start < end, got [{start}, {end})")
    nodes = []
    position = start
    remaining = end - start
    while remaining:
        level = remaining.bit_length() - 1
        size = 1 << level
        if position % size:
            raise ProofError(f"range [{start}, {end}) is not aligned to its subtrees")
        nodes.append(Node(level, position >> level))
        position += size
        remaining -= size
    return nodes


def fold_range(nodes: Sequence[bytes]) -> bytes:
    """Hash of a range from its perfect subtrees (left to right): H(a, H(b, H(c, d)))."""
    if not nodes:
        raise ProofError("expected at least one subtree hash")
    result = nodes[-1]
    for left in reversed(nodes[:-1]):
        result = node_hash(left, result)
    return result


def range_hash(start: int, end: int, lookup: NodeLookup) -> bytes:
    return fold_range([lookup(node) for node in range_nodes(start, end)])


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PATH(index, D[size]) (RFC 6962 §2.1.1), leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"expected 0 <= index < tree size, got index {index}, size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        middle = start + k
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PROOF(first, D[second]) (RFC 6962 §2.1.2).

    Empty when ``first`` is 0 or equal to ``second`` (every tree extends the empty tree and
    itself).
    """
    if not 0 <= first <= second:
        raise ProofError(f"expected 0 <= first <= second, got first {first}, second {second}")
    if first in (0, second):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m = 0, second, first
    have_root = True  # SUBPROOF's b: the old root is known to the verifier
    while True:
        n = end - start
        if m == n:
            if not have_root:
                ranges.append((start, end))
            break
        k = split_point(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            have_root = False
    ranges.reverse()
    return ranges


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    needed: set[Node] = set()
    for start, end in ranges:
        needed.update(range_nodes(start, end))
    return needed


def inclusion_nodes(index: int, size: int) -> set[Node]:
    """The stored nodes an inclusion proof needs: O(log size) of them."""
    return nodes_for(inclusion_ranges(index, size))


def consistency_nodes(first: int, second: int) -> set[Node]:
    """The stored nodes a consistency proof needs: O(log second) of them."""
    return nodes_for(consistency_ranges(first, second))


def inclusion_proof(index: int, size: int, lookup: NodeLookup) -> list[bytes]:
    return [range_hash(start, end, lookup) for start, end in inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, lookup: NodeLookup) -> list[bytes]:
    return [range_hash(start, end, lookup) for start, end in consistency_ranges(first, second)]


def root_hash(size: int, lookup: NodeLookup) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return range_hash(0, size, lookup)


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"expected {name} of {HASH_SIZE} bytes, got {len(value)}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an audit path: RFC 9162 §2.1.3.2, steps 1-5.

    Raises ``ProofError`` when the path cannot belong to ``index`` in a tree of ``size``.
    """
    if not 0 <= index < size:
        raise ProofError(f"expected 0 <= index < tree size, got index {index}, size {size}")
    _check_hash("leaf hash", leaf)
    fn, sn, r = index, size - 1, leaf
    for element in proof:
        _check_hash("proof element", element)
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(element, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``leaf`` is entry ``index`` of the tree of ``size`` with this ``root``."""
    try:
        return root_from_inclusion_proof(index, size, leaf, proof) == root
    except ProofError:
        return False


def verify_consistency(
    *, first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when the tree of ``second`` extends the tree of ``first``: RFC 9162 §2.1.4.2."""
    if not 0 <= first <= second:
        return False
    if any(len(element) != HASH_SIZE for element in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the old root is itself a node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


class CompactRange:
    """The right border of the tree ``[0, size)``: one perfect subtree hash per set bit of size.

    Appending a leaf merges equal-sized subtrees (binary carry), which is how the log learns the
    new complete nodes to store. O(log n) memory; it is what the head row keeps between appends.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ProofError(
                f"expected {size.bit_count()} subtree hashes for size {size}, got {len(hashes)}"
            )
        for value in hashes:
            _check_hash("subtree hash", value)
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_bytes(cls, size: int, packed: bytes) -> CompactRange:
        if len(packed) % HASH_SIZE:
            raise ProofError(f"expected a multiple of {HASH_SIZE} bytes, got {len(packed)}")
        hashes = [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)]
        return cls(size, hashes)

    def to_bytes(self) -> bytes:
        return b"".join(self._hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def nodes(self) -> list[Node]:
        return range_nodes(0, self._size) if self._size else []

    def append(self, leaf: bytes) -> list[bytes]:
        """Add a leaf hash; returns the hashes of the subtrees it completed, level 1 upwards."""
        _check_hash("leaf hash", leaf)
        completed: list[bytes] = []
        value = leaf
        size = self._size
        while size & 1:
            value = node_hash(self._hashes.pop(), value)
            completed.append(value)
            size >>= 1
        self._hashes.append(value)
        self._size += 1
        return completed

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        return fold_range(self._hashes)


def completed_nodes(index: int) -> list[Node]:
    """The complete subtrees (level >= 1) whose last leaf is ``index``, lowest first.

    Appending leaf ``index`` completes one subtree per trailing 1-bit of ``index``; the log stores
    their hashes on that leaf's row, so node (level, i) lives on row ((i + 1) << level) - 1.
    """
    nodes = []
    level = 1
    while (index >> (level - 1)) & 1:
        nodes.append(Node(level, index >> level))
        level += 1
    return nodes
