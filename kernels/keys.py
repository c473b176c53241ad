"""Key-table kernels: CRC-32 hashing and open-addressing insert/lookup over a byte arena.

A key table is three arrays: ``blob`` (uint8, every key's UTF-8 bytes, back to
back), ``off`` (int64, ``off[k]:off[k+1]`` is key ``k``) and ``tab`` (int32,
a power-of-two open-addressing table of key ids, -1 empty, linear probing from
``crc32(key) & mask``). The hash is the standard reflected CRC-32 (the one
``zlib.crc32`` computes), so Python and the kernels probe the same slots.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel

__all__ = ["CRC_TABLE", "crc32", "rebuild_table", "find_or_add", "argsort_keys", "frame_keys"]


def _crc_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, np.uint32(0xEDB88320) ^ (t >> np.uint32(1)), t >> np.uint32(1)).astype(np.uint32)
    return t


CRC_TABLE = _crc_table()


@kernel(inline=True)
def crc32(buf, a, b, table):
    """CRC-32 of ``buf[a:b]`` (equal to ``zlib.crc32(bytes(buf[a:b]))``)."""
    c = np.uint32(0xFFFFFFFF)
    for i in range(a, b):
        c = table[(c ^ np.uint32(buf[i])) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return c ^ np.uint32(0xFFFFFFFF)


@kernel(inline=True)
def _same(x, xa, xb, y, ya, yb):
    """Whether ``x[xa:xb]`` and ``y[ya:yb]`` hold the same bytes."""
    if xb - xa != yb - ya:
        return False
    for j in range(xb - xa):
        if x[xa + j] != y[ya + j]:
            return False
    return True


@kernel
def rebuild_table(blob, off, n, tab, table):
    """Fill the (all -1) table ``tab`` with key ids ``0..n-1`` (keys are distinct)."""
    mask = np.uint32(tab.shape[0] - 1)
    for k in range(n):
        i = crc32(blob, off[k], off[k + 1], table) & mask
        while tab[i] >= 0:
            i = (i + np.uint32(1)) & mask
        tab[i] = k


@kernel
def find_or_add(qblob, qoff, blob, off, n, tab, table, kids, first):
    """Key id of every query key ``qblob[qoff[i]:qoff[i+1]]``, registering new ones.

    Known keys are compared against ``blob``/``off`` (ids ``< n``). A new key gets
    the next id ``n + m`` (``m`` counting new keys in first-seen order) and is
    entered in ``tab`` at once, so a repeat later in the query finds it;
    ``first[m]`` records the query row holding its bytes. The caller appends
    those bytes to the arena and guarantees ``tab`` stays at most half full.
    Returns ``m``, the number of new keys.
    """
    mask = np.uint32(tab.shape[0] - 1)
    m = 0
    for q in range(qoff.shape[0] - 1):
        a = qoff[q]
        b = qoff[q + 1]
        i = crc32(qblob, a, b, table) & mask
        while True:
            k = tab[i]
            if k < 0:
                tab[i] = n + m
                first[m] = q
                kids[q] = n + m
                m += 1
                break
            if k < n:
                hit = _same(blob, off[k], off[k + 1], qblob, a, b)
            else:
                j = first[k - n]
                hit = _same(qblob, qoff[j], qoff[j + 1], qblob, a, b)
            if hit:
                kids[q] = k
                break
            i = (i + np.uint32(1)) & mask
    return m


@kernel(inline=True)
def _chunk(blob, off, k, depth):
    """Bytes ``8*depth .. 8*depth+7`` of key ``k`` as a big-endian uint64 (zero-padded)."""
    a = off[k] + 8 * depth
    m = off[k + 1] - a
    v = np.uint64(0)
    for j in range(8):
        v <<= np.uint64(8)
        if j < m:
            v |= np.uint64(blob[a + j])
    return v


@kernel
def key_prefixes(blob, off, kids, out):
    """``out[q]`` = the first 8 bytes of key ``kids[q]`` as a big-endian uint64 (zero-padded),
    so that comparing prefixes as integers compares the keys' first 8 bytes."""
    for q in range(kids.shape[0]):
        out[q] = _chunk(blob, off, kids[q], 0)


@kernel
def sort_ties(blob, off, kids, prefix, idx):
    """After a stable sort of ``idx`` by ``prefix`` (the first 8 bytes): order each run of
    equal prefixes by the next 8 bytes, and so on (most-significant-chunk radix order);
    keys whose chunks all tie differ only in length (zero padding), shorter first."""
    n = idx.shape[0]
    cur = prefix.copy()  # the chunk each position was last sorted by, per kids position
    stack = [(0, n, 0)]
    while len(stack):
        lo, hi, depth = stack.pop()
        a = lo
        while a < hi:
            b = a + 1
            while b < hi and cur[idx[b]] == cur[idx[a]]:
                b += 1
            if b - a > 1:
                longest = 0
                for q in range(a, b):
                    k = kids[idx[q]]
                    longest = max(longest, off[k + 1] - off[k])
                seg = idx[a:b].copy()
                if longest <= 8 * (depth + 1):  # all bytes compared: shorter first
                    lens = np.empty(b - a, np.int64)
                    for q in range(b - a):
                        k = kids[seg[q]]
                        lens[q] = off[k + 1] - off[k]
                    order = np.argsort(lens, kind="mergesort")
                    for q in range(b - a):
                        idx[a + q] = seg[order[q]]
                else:
                    nxt = np.empty(b - a, np.uint64)
                    for q in range(b - a):
                        nxt[q] = _chunk(blob, off, kids[seg[q]], depth + 1)
                    order = np.argsort(nxt, kind="mergesort")
                    for q in range(b - a):
                        idx[a + q] = seg[order[q]]
                        cur[seg[order[q]]] = nxt[order[q]]
                    stack.append((a, b, depth + 1))
            a = b


@kernel
def argsort_keys(blob, off, kids):
    """Stable order of ``kids`` by their keys (positions into ``kids``): a stable sort on
    the first 8 bytes, then :func:`sort_ties` on runs that share them."""
    prefix = np.empty(kids.shape[0], np.uint64)
    key_prefixes(blob, off, kids, prefix)
    idx = np.argsort(prefix, kind="mergesort")
    sort_ties(blob, off, kids, prefix, idx)
    return idx


@kernel
def frame_keys(blob, off, kids, out):
    """Write ``u64 length (little-endian) + key bytes`` for each of ``kids`` into ``out``
    (sized ``8 * len(kids) + total key bytes``); returns the bytes written."""
    p = 0
    for q in range(kids.shape[0]):
        k = kids[q]
        a = off[k]
        n = off[k + 1] - a
        v = n
        for j in range(8):
            out[p + j] = np.uint8(v & 0xFF)
            v >>= 8
        p += 8
        for j in range(n):
            out[p + j] = blob[a + j]
        p += n
    return p
