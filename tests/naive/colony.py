"""Twins of ``kernels/colony.py``: routing with the ``xxhash`` package and ``bisect``,
float32 sums strictly left to right."""
from __future__ import annotations

import bisect

import numpy as np
import xxhash

F = np.float32
MAX_INLINE = 240


def xxh3_64(data: bytes) -> int:
    """XXH3-64, seed 0, default secret."""
    return xxhash.xxh3_64_intdigest(data)


def locality_part(key: bytes, cut: int) -> bytes:
    """The bytes of ``key`` before its first ``cut`` byte (all of it when ``cut < 0`` or absent)."""
    if cut < 0 or cut not in key:
        return key
    return key[:key.index(cut)]


def locality_hashes(keys, cut) -> tuple:
    """(hash per key, 0 for parts over 240 bytes; indices of those long parts)."""
    out, long_idx = [], []
    for i, k in enumerate(keys):
        part = locality_part(k, cut)
        if len(part) > MAX_INLINE:
            out.append(0)
            long_idx.append(i)
        else:
            out.append(xxh3_64(part))
    return out, long_idx


def assign_ranges(hashes, bounds, owners) -> list:
    """Owner of the range (sorted starts ``bounds``, ``bounds[0] == 0``) holding each hash."""
    return [owners[bisect.bisect_right(bounds, h) - 1] for h in hashes]


def seq_sum(v) -> np.float32:
    """Float32 sum, left to right from +0.0."""
    acc = F(0.0)
    for x in v:
        acc = F(acc + F(x))
    return acc


def sum_squares(x) -> np.float32:
    return seq_sum([F(v) * F(v) for v in x])


def dot(a, b) -> np.float32:
    return seq_sum([F(u) * F(v) for u, v in zip(a, b)])


def cosine(a, b) -> np.float32:
    """Dot over the product of norms; 0 when either norm is 0."""
    d = dot(a, b)
    ma, mb = np.sqrt(sum_squares(a)), np.sqrt(sum_squares(b))
    if ma == 0 or mb == 0:
        return F(0.0)
    return F(d / F(ma * mb))


def row_magnitudes(rows) -> list:
    return [np.sqrt(sum_squares(r)) for r in rows]
