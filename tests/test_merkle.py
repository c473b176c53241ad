"""RFC 9162 Merkle proofs: hand-computed small trees, and a naive implementation for 1..300 leaves."""
import hashlib

import pytest

from thermogram.merkle import (EMPTY_ROOT, MerkleTree, consistency_proof, inclusion_proof, leaf_hash, node_hash,
                               root, verify_consistency, verify_inclusion)


def H(b):
    return hashlib.sha256(b).digest()


def naive_mth(d):
    if not d:
        return H(b"")
    if len(d) == 1:
        return H(b"\x00" + d[0])
    k = 1
    while k * 2 < len(d):
        k *= 2
    return H(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m, d):
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return naive_path(m, d[:k]) + [naive_mth(d[k:])]
    return naive_path(m - k, d[k:]) + [naive_mth(d[:k])]


def naive_sub(m, d, b):
    if m == len(d):
        return [] if b else [naive_mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return naive_sub(m, d[:k], b) + [naive_mth(d[k:])]
    return naive_sub(m - k, d[k:], False) + [naive_mth(d[:k])]


def test_hand_computed_trees():
    a, b, c = b"a", b"b", b"c"
    assert root([]) == EMPTY_ROOT == H(b"")
    assert root([a]) == H(b"\x00a")
    ab = H(b"\x01" + H(b"\x00a") + H(b"\x00b"))
    assert root([a, b]) == ab
    assert root([a, b, c]) == H(b"\x01" + ab + H(b"\x00c"))
    assert inclusion_proof([a, b, c], 2) == [ab]
    assert inclusion_proof([a, b, c], 0) == [H(b"\x00b"), H(b"\x00c")]
    assert consistency_proof([a, b, c], 2) == [H(b"\x00c")]
    assert consistency_proof([a, b, c], 1) == [H(b"\x00b"), H(b"\x00c")]


LEAVES = [bytes([i % 256, i // 256]) * 3 for i in range(300)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 64, 100, 127, 128, 129, 255, 256, 257, 300])
def test_against_naive_and_verifiers(n):
    d = LEAVES[:n]
    t = MerkleTree(d)
    r = t.root()
    assert r == naive_mth(d)
    for m in range(n):
        p = t.inclusion(m)
        assert p == naive_path(m, d)
        assert verify_inclusion(d[m], m, n, p, r)
        assert not verify_inclusion(d[m] + b"x", m, n, p, r)
        if n > 1:
            assert not verify_inclusion(d[m], (m + 1) % n, n, p, r) or d[m] == d[(m + 1) % n]
    for old in range(1, n + 1):
        p = t.consistency(old)
        assert p == (naive_sub(old, d, True) if old < n else [])
        old_root = naive_mth(d[:old])
        assert verify_consistency(old, n, old_root, r, p)
        if old < n:
            assert not verify_consistency(old, n, H(b"forged"), r, p)
            assert not verify_consistency(old, n, old_root, H(b"forged"), p)


def test_all_sizes_1_to_300_roots_match_naive():
    t = MerkleTree(LEAVES)
    for n in range(1, 301):
        assert t.root(n) == naive_mth(LEAVES[:n])


def test_rewritten_history_fails_consistency():
    d = LEAVES[:40]
    old_root = root(d[:25])
    forged = d[:10] + [b"evil"] + d[11:]
    t = MerkleTree(forged)
    assert not verify_consistency(25, 40, old_root, t.root(), t.consistency(25))


def test_bad_arguments():
    t = MerkleTree(LEAVES[:5])
    with pytest.raises(ValueError):
        t.inclusion(5)
    with pytest.raises(ValueError):
        t.consistency(0)
    assert not verify_inclusion(b"a", 3, 3, [], b"")
    assert leaf_hash(b"x") != node_hash(b"x"[:0], b"x")
