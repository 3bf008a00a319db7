"""RFC 6962 hashing and proofs against the known-answer vectors of the Certificate Transparency test
data (the 8 leaves of transparency-dev/merkle ``testonly/constants.go`` and the proofs of
``proof/verify_test.go``; the same as google/certificate-transparency's), plus tile-aligned trees
checked against a straightforward recursive MTH."""

from __future__ import annotations

import hashlib
import random

import pytest

from archiver.errors import IntegrityError
from archiver.tlog.hashing import (
    EMPTY_ROOT,
    leaf_hash,
    node_hash,
    root_of,
    tree_from_leaves,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                      "606162636465666768696a6b6c6d6e6f")]
# RootHashes(): index = tree size
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
LEAF_HASHES = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")]


def h(x: str) -> bytes:
    return bytes.fromhex(x)


# (leaf index 0-based, tree size, proof)
INCLUSION = [
    (0, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (0, 1, []),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written as the RFC states it (the reference the fast code is held to)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def test_leaf_hashes_and_roots_match_the_vectors() -> None:
    assert [leaf_hash(x) for x in LEAVES] == LEAF_HASHES
    assert EMPTY_ROOT == ROOTS[0]
    for n in range(9):
        assert root_of([leaf_hash(x) for x in LEAVES[:n]]) == ROOTS[n], n
        assert tree_from_leaves(LEAF_HASHES[:n]).root() == ROOTS[n], n


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_the_vectors(index: int, size: int, proof: list[bytes]) -> None:
    tree = tree_from_leaves(LEAF_HASHES)
    assert tree.inclusion_proof(index, size) == proof
    verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])
    # the corruptions transparency-dev/merkle probes: each must fail
    bad = [(index, size * 2, proof, ROOTS[size]), (index, size, proof, EMPTY_ROOT),
           (index, size, [*proof, ROOTS[size]], ROOTS[size]), (index, size, [ROOTS[size], *proof], ROOTS[size])]
    if index + 1 < size:
        bad.append((index + 1, size, proof, ROOTS[size]))
    if proof:
        bad.append((index, size, proof[:-1], ROOTS[size]))
        flipped = [bytes([proof[0][0] ^ 8]) + proof[0][1:], *proof[1:]]
        bad.append((index, size, flipped, ROOTS[size]))
    for i, n, p, r in bad:
        with pytest.raises(IntegrityError):
            verify_inclusion(LEAF_HASHES[index], i, n, p, r)
    with pytest.raises(IntegrityError):
        verify_inclusion(leaf_hash(b"WrongLeaf"), index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors(old: int, new: int, proof: list[bytes]) -> None:
    tree = tree_from_leaves(LEAF_HASHES)
    assert tree.consistency_proof(old, new) == proof
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
    if not proof:
        return
    bad = [(old - 1, new, ROOTS[old], ROOTS[new], proof), (old, new * 2, ROOTS[old], ROOTS[new], proof),
           (old, new, ROOTS[new], ROOTS[old], proof), (old, new, ROOTS[old], ROOTS[new], []),
           (old, new, ROOTS[old], ROOTS[new], proof[:-1]), (old, new, ROOTS[old], ROOTS[new], [*proof, ROOTS[old]]),
           (old, new, ROOTS[old], ROOTS[new], [proof[0], *proof]),
           (old, new, ROOTS[old], ROOTS[new], [bytes([proof[0][0] ^ 16]) + proof[0][1:], *proof[1:]])]
    for o, n, r1, r2, p in bad:
        with pytest.raises(IntegrityError):
            verify_consistency(o, n, r1, r2, p)


def test_trivial_and_refused_consistency() -> None:
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    with pytest.raises(IntegrityError, match="shrank"):
        verify_consistency(5, 4, ROOTS[5], ROOTS[4], [])
    with pytest.raises(IntegrityError, match="forked"):
        verify_consistency(4, 4, ROOTS[4], ROOTS[5], [])


@pytest.mark.parametrize("size", [255, 256, 257, 511, 512, 1000, 65536 + 300])
def test_trees_over_tiles_agree_with_the_rfc(size: int) -> None:
    """Ranges aligned on tiles (read as one stored hash) and unaligned ones (computed) give the RFC's
    MTH, and every proof verifies."""
    rng = random.Random(size)
    data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(size)]
    hashes = [leaf_hash(d) for d in data]
    tree = tree_from_leaves(hashes)
    want = mth(data) if size <= 2000 else root_of(hashes)
    assert tree.root() == want == root_of(hashes)
    for _ in range(20):
        i = rng.randrange(size)
        verify_inclusion(hashes[i], i, size, tree.inclusion_proof(i), want)
        old = rng.randrange(1, size + 1)
        verify_consistency(old, size, root_of(hashes[:old]), want, tree.consistency_proof(old))
