"""RFC 6962 / RFC 9162 Merkle trees, so one timestamp can cover a whole batch of manifests.

Leaves are hashed as SHA-256(0x00 || leaf) and nodes as SHA-256(0x01 || left || right), the
Certificate Transparency convention: the prefixes stop a leaf from posing as an inner node.
Inclusion proofs and their verification follow RFC 9162 §2.1.3, so any CT library can check them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = _split(n)
    return node_hash(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash (MTH) of the leaves; the empty tree hashes to SHA-256 of nothing."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _root_of_hashes([leaf_hash(x) for x in leaves])


def inclusion_proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's audit path (RFC 6962 §2.1.1), in leaf order.

    Each subtree hash is computed once (memoised by its leaf range), so a batch of n costs
    O(n log n) hashes instead of recomputing sibling subtrees for every leaf."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    hashes = [leaf_hash(x) for x in leaves]
    memo: dict[tuple[int, int], bytes] = {}

    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return hashes[lo]
        got = memo.get((lo, hi))
        if got is None:
            k = lo + _split(hi - lo)
            got = memo[(lo, hi)] = node_hash(mth(lo, k), mth(k, hi))
        return got

    def path(index: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = lo + _split(hi - lo)
        if index < k:
            return [*path(index, lo, k), mth(k, hi)]
        return [*path(index, k, hi), mth(lo, k)]

    n = len(hashes)
    return mth(0, n), [path(i, 0, n) for i in range(n)]


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: recompute the root from a leaf and its audit path."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


__all__ = ["inclusion_proofs", "leaf_hash", "node_hash", "root", "verify_inclusion"]
