"""RFC 6962 / RFC 9162 Merkle tree hashing: leaf and node hashes, tree hashes from stored tile hashes,
inclusion and consistency proofs, and their verification.

Why our own and not a dependency: the algorithms are a page each, the verifiers we must agree with
(Go's ``golang.org/x/mod/sumdb/tlog``, ``tlog-scales``) are tested against us in ``tests/test_tlog_*``,
and the RFC's known-answer vectors pin every function here. No I/O: a tree is read through a
callable that returns stored hashes (a tile, from the catalog or from tile files).

Hashes are 32 raw bytes everywhere in this module. A *tile-level hash* at level ``L`` and index ``i``
is ``MTH(D[i * 256**L : (i + 1) * 256**L])`` (c2sp.org/tlog-tiles): level 0 holds leaf hashes, level 1
the root of each full 256-leaf tile, and so on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from archiver.errors import IntegrityError

HASH_SIZE = 32
TILE_WIDTH = 256
#: MTH({}) = SHA-256 of the empty string (RFC 6962 §2.1)
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of a leaf (domain-separated from interior nodes)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1): where RFC 6962 splits a tree."""
    if n < 2:
        raise ValueError(f"no split point for a tree of {n} leaves")
    return 1 << ((n - 1).bit_length() - 1)


def root_of(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (or of tile-level hashes of one level: a tile's own root).

    Iterative, with the compact-range stack: every full subtree is merged as soon as it is complete,
    so the work is ``len(hashes) - 1`` node hashes and the memory a stack of log2(n) hashes."""
    if not hashes:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes strictly decreasing
    for h in hashes:
        size, cur = 1, h
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            cur = node_hash(left, cur)
            size *= 2
        stack.append((size, cur))
    _, acc = stack.pop()
    while stack:  # the right edge: smaller subtrees are right children of larger ones
        _, left = stack.pop()
        acc = node_hash(left, acc)
    return acc


#: reads the tile at (level, index) for a tree whose level holds ``width`` hashes in that tile
ReadTile = Callable[[int, int, int], Sequence[bytes]]


class TileTree:
    """The tree of ``size`` leaves, read from stored tile-level hashes (a tile at a time, cached).

    :meth:`hash` is MTH(D[start:end]) for any range; a range that one stored hash covers (aligned on
    a power of 256) is read, any other is computed from the stored hashes below it. ``read_tile`` is
    given the width the tree needs (256 for a full tile, less for the right-most partial one)."""

    def __init__(self, size: int, read_tile: ReadTile) -> None:
        if size < 0:
            raise ValueError("negative tree size")
        self.size = size
        self._read = read_tile
        self._tiles: dict[tuple[int, int], Sequence[bytes]] = {}

    def stored(self, level: int, index: int) -> bytes:
        """The tile-level hash at ``level``, ``index`` (it must be complete in this tree)."""
        n, i = divmod(index, TILE_WIDTH)
        key = (level, n)
        tile = self._tiles.get(key)
        if tile is None:
            count = self.size // TILE_WIDTH ** level  # complete hashes at this level
            width = min(TILE_WIDTH, count - n * TILE_WIDTH)
            if width <= i:
                raise IndexError(f"no complete hash at level {level} index {index} in a tree of {self.size}")
            tile = self._read(level, n, width)
            if len(tile) != width or any(len(h) != HASH_SIZE for h in tile):
                raise IntegrityError(f"tile {level}/{n} of a tree of {self.size} is not {width} hashes")
            self._tiles[key] = tile
        return tile[i]

    def hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]), ``0 <= start <= end <= size``."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside a tree of {self.size}")
        if start == end:
            return EMPTY_ROOT
        level, s, e = 0, start, end
        while e - s > 1 and s % TILE_WIDTH == 0 and e % TILE_WIDTH == 0:
            s //= TILE_WIDTH
            e //= TILE_WIDTH
            level += 1
        if e - s == 1:
            return self.stored(level, s)
        k = split_point(end - start)
        return node_hash(self.hash(start, start + k), self.hash(start + k, end))

    def root(self) -> bytes:
        return self.hash(0, self.size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[0:size]): the audit path, leaf's sibling first."""
        n = self.size if size is None else size
        if not 0 <= index < n <= self.size:
            raise ValueError(f"no leaf {index} in a tree of {n}")
        out: list[bytes] = []

        def path(m: int, start: int, count: int) -> None:
            if count == 1:
                return
            k = split_point(count)
            if m < k:
                path(m, start, k)
                out.append(self.hash(start + k, start + count))
            else:
                path(m - k, start + k, count - k)
                out.append(self.hash(start, start + k))
        path(index, 0, n)
        return out

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(old, D[0:new]); empty when ``old`` is 0 or equals ``new``."""
        n = self.size if new is None else new
        if not 0 <= old <= n <= self.size:
            raise ValueError(f"no consistency proof from {old} to {n} in a tree of {self.size}")
        out: list[bytes] = []
        if old == 0 or old == n:
            return out

        def subproof(m: int, start: int, count: int, whole: bool) -> None:
            if m == count:
                if not whole:
                    out.append(self.hash(start, start + count))
                return
            k = split_point(count)
            if m <= k:
                subproof(m, start, k, whole)
                out.append(self.hash(start + k, start + count))
            else:
                subproof(m - k, start + k, count - k, False)
                out.append(self.hash(start, start + k))
        subproof(old, 0, n, True)
        return out


def tree_from_leaves(leaf_hashes: Sequence[bytes]) -> TileTree:
    """A :class:`TileTree` over leaf hashes held in memory (tests, audits): the tiles are computed."""
    levels: list[list[bytes]] = [list(leaf_hashes)]
    while len(levels[-1]) >= TILE_WIDTH:
        below = levels[-1]
        levels.append([root_of(below[i:i + TILE_WIDTH]) for i in range(0, len(below) - TILE_WIDTH + 1, TILE_WIDTH)])

    def read(level: int, n: int, width: int) -> Sequence[bytes]:
        return levels[level][n * TILE_WIDTH:n * TILE_WIDTH + width]
    return TileTree(len(leaf_hashes), read)


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise IntegrityError(f"{what} is {len(h)} bytes, not a SHA-256 hash")


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to (raises when the proof's shape is wrong)."""
    _check_hash(leaf, "the leaf hash")
    if not 0 <= index < size:
        raise IntegrityError(f"leaf index {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "an inclusion proof hash")
        if sn == 0:
            raise IntegrityError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`IntegrityError` unless ``proof`` proves leaf hash ``leaf`` at ``index`` under ``root``."""
    _check_hash(root, "the root hash")
    if root_from_inclusion(leaf, index, size, proof) != root:
        raise IntegrityError(f"the inclusion proof of leaf {index} does not lead to the root of the tree of {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: raise :class:`IntegrityError` unless the tree of ``new_size`` extends the
    tree of ``old_size``. Trivial cases: equal sizes need equal roots and an empty proof; an empty
    old tree is consistent with any tree (its root must be MTH({}))."""
    _check_hash(old_root, "the old root")
    _check_hash(new_root, "the new root")
    if not 0 <= old_size <= new_size:
        raise IntegrityError(f"a tree of {new_size} cannot extend a tree of {old_size}: the log shrank")
    if old_size == new_size:
        if proof:
            raise IntegrityError("a consistency proof between trees of one size must be empty")
        if old_root != new_root:
            raise IntegrityError(f"two different roots for the tree of size {old_size}: the log forked")
        return
    if old_size == 0:
        if proof:
            raise IntegrityError("a consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise IntegrityError("the root of the empty tree is not MTH({})")
        return
    if not proof:
        raise IntegrityError("the consistency proof is empty")
    path = list(proof)
    for p in path:
        _check_hash(p, "a consistency proof hash")
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree: its root starts the walk
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise IntegrityError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("the consistency proof is shorter than the tree is deep")
    if fr != old_root:
        raise IntegrityError(f"the consistency proof does not lead to the old root (size {old_size}): "
                             "the log was rewritten")
    if sr != new_root:
        raise IntegrityError(f"the consistency proof does not lead to the new root (size {new_size})")


__all__ = ["EMPTY_ROOT", "HASH_SIZE", "TILE_WIDTH", "ReadTile", "TileTree", "leaf_hash", "node_hash",
           "root_from_inclusion", "root_of", "split_point", "tree_from_leaves", "verify_consistency",
           "verify_inclusion"]
