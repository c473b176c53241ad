"""Merkle proofs over the record log, with RFC 9162 hashing.

Leaves are the records' 32-byte hashes. ``leaf = SHA-256(0x00 || data)``,
``node = SHA-256(0x01 || left || right)``, the tree split at the largest power
of two below ``n`` (RFC 9162 §2.1.1). Inclusion and consistency proofs and
their verification follow §2.1.3 and §2.1.4, so a holder of an old signed root
can check that a newer log only appended.
"""
from __future__ import annotations

import hashlib
from typing import Dict, List, Sequence, Tuple

from .errors import ValidationError

__all__ = ["leaf_hash", "node_hash", "MerkleTree", "root", "inclusion_proof", "consistency_proof",
           "verify_inclusion", "verify_consistency", "EMPTY_ROOT"]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)`` (32 bytes)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)`` (32 bytes)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


class MerkleTree:
    """Tree hashes over a fixed list of leaf data, with cached subtree hashes."""

    def __init__(self, leaves: Sequence[bytes]):
        self.leaves = [leaf_hash(d) for d in leaves]
        self._cache: Dict[Tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self.leaves)

    def mth(self, lo: int, hi: int) -> bytes:
        """Merkle Tree Hash of leaves ``[lo, hi)``."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return self.leaves[lo]
        key = (lo, hi)
        h = self._cache.get(key)
        if h is None:
            k = _split(n)
            h = node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
            self._cache[key] = h
        return h

    def root(self, size: int = -1) -> bytes:
        """Root hash of the tree of the first ``size`` leaves (negative: all of them);
        ``EMPTY_ROOT`` for zero leaves."""
        size = len(self.leaves) if size < 0 else size
        return self.mth(0, size)

    def inclusion(self, m: int, size: int = -1) -> List[bytes]:
        """Audit path of leaf ``m`` in the tree of the first ``size`` leaves."""
        size = len(self.leaves) if size < 0 else size
        if not 0 <= m < size <= len(self.leaves):
            raise ValidationError(f"leaf {m} is not in a tree of {size} leaves")
        return self._path(m, 0, size)

    def _path(self, m: int, lo: int, hi: int) -> List[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return self._path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self._path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def consistency(self, old: int, size: int = -1) -> List[bytes]:
        """Proof that the first ``old`` leaves are a prefix of the first ``size``."""
        size = len(self.leaves) if size < 0 else size
        if not 0 < old <= size <= len(self.leaves):
            raise ValidationError(f"no consistency proof from {old} to {size} leaves")
        if old == size:
            return []
        return self._sub(old, 0, size, True)

    def _sub(self, m: int, lo: int, hi: int, whole: bool) -> List[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self.mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return self._sub(m, lo, lo + k, whole) + [self.mth(lo + k, hi)]
        return self._sub(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]


def root(leaves: Sequence[bytes]) -> bytes:
    """Root hash of the tree over ``leaves`` (the leaves' data, hashed here); ``EMPTY_ROOT`` if empty."""
    return MerkleTree(leaves).root()


def inclusion_proof(leaves: Sequence[bytes], m: int) -> List[bytes]:
    """Audit path of leaf ``m`` in the tree over all of ``leaves`` (see :func:`verify_inclusion`);
    raises :class:`ValidationError` if ``m`` is out of range."""
    return MerkleTree(leaves).inclusion(m)


def consistency_proof(leaves: Sequence[bytes], old: int) -> List[bytes]:
    """Proof that the tree of the first ``old`` leaves is a prefix of the tree over all of ``leaves``
    (see :func:`verify_consistency`); raises :class:`ValidationError` unless ``0 < old <= len(leaves)``."""
    return MerkleTree(leaves).consistency(old)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``leaf`` (the leaf's *data*) sit at ``index`` of the tree with ``root_hash``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``old_size`` leaves a prefix of the ``new_size`` one?"""
    if old_size == new_size:
        return not proof and old_root == new_root
    if not 0 < old_size < new_size or not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path = [old_root] + path
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
