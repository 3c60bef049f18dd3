"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification (docs/design.md section
15).

Pure functions, no database. The tree's leaves are the events in `log_index` order; a leaf's
hash is SHA-256(0x00 || the event's 32-byte hash) and an inner node's SHA-256(0x01 || left ||
right). The root of a tree of n leaves, MTH(D[n]), splits at the largest power of two below n,
so every hash a proof needs is either a *complete* subtree (2^level leaves starting at a multiple
of 2^level: a node that never changes once written, see `tlog.py`) or the right edge of the tree,
which is folded from complete subtrees.

A node is named (level, position): the complete subtree over leaves
[position * 2^level, (position + 1) * 2^level).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence

Node = tuple[int, int]
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof was asked for sizes or indices that do not make one (e.g. an index past the size)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def event_leaf_hash(event_hash_hex: str) -> bytes:
    """The leaf of one event: its chain hash (hex in the database) as 32 raw bytes."""
    return leaf_hash(bytes.fromhex(event_hash_hex))


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# ------------------------------------------------------------------ ranges and nodes


def range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees whose right fold is MTH(D[start:end]), left to right.

    Valid for the ranges the RFC recursion produces: `start` is a multiple of a power of two at
    least as large as end - start, so the range splits into complete subtrees by the bits of its
    size, largest first.
    """
    nodes: list[Node] = []
    size = end - start
    while size > 0:
        level = size.bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
        size -= 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees (left to right): a right fold."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTH form the inclusion proof of leaf `index` in a tree of `size`
    (RFC 9162 2.1.3.1, PATH), in proof order: the leaf's sibling first, the root's child last."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The ranges whose MTH form the consistency proof from `old_size` to `new_size`
    (RFC 9162 2.1.4.1, SUBPROOF), in proof order. Empty when the sizes are equal."""
    if not 0 < old_size <= new_size:
        raise ProofError(
            f"a consistency proof needs 1 <= from <= to (got from {old_size}, to {new_size})"
        )
    path: list[tuple[int, int]] = []
    start, end, complete = 0, new_size, True
    while True:
        if old_size - start == end - start:
            if not complete:
                path.append((start, end))
            break
        k = _split(end - start)
        if old_size - start <= k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
            complete = False
    path.reverse()
    return path


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    return {node for start, end in ranges for node in range_nodes(start, end)}


def hashes_for(ranges: Iterable[tuple[int, int]], lookup: Callable[[Node], bytes]) -> list[bytes]:
    """The MTH of each range, from the complete subtree hashes that `lookup` returns."""
    return [fold([lookup(node) for node in range_nodes(start, end)]) for start, end in ranges]


# ------------------------------------------------------------------ in memory (tests, verify_log)


class MemoryTree:
    """Every complete subtree of a list of leaf hashes, built once in O(n): the reference that
    `manage.py verify_log` and the tests compare the stored tree with."""

    def __init__(self, leaves: Sequence[bytes]):
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def node(self, node: Node) -> bytes:
        level, position = node
        return self.levels[level][position]

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size == 0:
            return EMPTY_ROOT
        return fold([self.node(n) for n in range_nodes(0, size)])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return hashes_for(inclusion_ranges(index, size), self.node)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return hashes_for(consistency_ranges(old_size, new_size), self.node)


def root_of(leaves: Sequence[bytes]) -> bytes:
    return MemoryTree(leaves).root()


# ------------------------------------------------------------------ verification (RFC 9162)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf` (RFC 9162 2.1.3.2); ProofError when the proof
    cannot be a proof for this index and size (wrong length, index past the size)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    r = leaf
    for p, on_left in _climb(index, size - 1, proof):
        r = node_hash(p, r) if on_left else node_hash(r, p)
    return r


def _climb(fn: int, sn: int, proof: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """The walk both RFC 9162 verifications make from node `fn` of a level whose last node is
    `sn` up to the root: each proof hash with whether it is the left sibling of the hash so far.
    ProofError when the proof is longer or shorter than that way up."""
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        on_left = bool(fn & 1) or fn == sn
        if on_left:
            # The last node of its level has no right sibling: it rises unpaired.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        yield p, on_left
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")


def _all_hashes(values: Iterable[bytes]) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    if not _all_hashes([leaf, root, *proof]):
        return False
    try:
        return root_from_inclusion(index, size, leaf, proof) == root
    except ProofError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when `proof` shows that the tree of `new_size` with `new_root` extends the tree of
    `old_size` with `old_root` (RFC 9162 2.1.4.2; equal sizes need equal roots and no proof).
    From size 0 there is nothing to prove, so it is refused as the reference implementations do."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof or not _all_hashes([old_root, new_root, *proof]):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    try:
        for c, on_left in _climb(fn, sn, path[1:]):
            if on_left:
                fr, sr = node_hash(c, fr), node_hash(c, sr)
            else:
                sr = node_hash(sr, c)
    except ProofError:
        return False
    return fr == old_root and sr == new_root
