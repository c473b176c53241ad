"""Byte-level kernels for the binary formats: whole-buffer packing and scanning.

Every scanner checks each length against the bytes left before reading, and
reports truncation with a negative return instead of reading past the end.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel

TRUNCATED = -1
BAD_POLARITY = -2
BAD_NANOS = -3


@kernel
def _u16(buf, p):
    """Little-endian u16 at ``buf[p:p+2]``, as int64 (no bounds check)."""
    return np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)


@kernel
def _u32(buf, p):
    """Little-endian u32 at ``buf[p:p+4]``, as int64 (no bounds check)."""
    return (np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8) | (np.int64(buf[p + 2]) << 16)
            | (np.int64(buf[p + 3]) << 24))


@kernel
def _i64(buf, p):
    """Little-endian two's-complement i64 at ``buf[p:p+8]`` (no bounds check)."""
    v = np.uint64(0)
    for j in range(8):
        v |= np.uint64(buf[p + j]) << np.uint64(8 * j)
    return np.int64(v)


@kernel
def _pol_ok(b):
    """Whether byte ``b`` is a valid polarity: 0, 1, or 255 (-1 as i8)."""
    return b == 0 or b == 1 or b == 255


@kernel
def scan_v1_entries(buf, pos, count, key_off, key_len, val_off, val_len, pol, mag, secs, nanos, cnt):
    """Walk ``count`` v1 entries starting at ``pos``.

    Entry: u16 key length, key bytes, u32 value count, value signals (2 bytes
    each), strength (2 bytes), i64 seconds, u32 nanoseconds, u32 update count.
    Fills the output arrays (``val_off`` is a byte offset) and returns the end
    position, or a negative code: -1 truncated, -2 bad polarity, -3 nanos >= 1e9.
    """
    n = buf.shape[0]
    for i in range(count):
        if pos + 2 > n:
            return TRUNCATED
        kl = _u16(buf, pos)
        pos += 2
        if pos + kl > n:
            return TRUNCATED
        key_off[i] = pos
        key_len[i] = kl
        pos += kl
        if pos + 4 > n:
            return TRUNCATED
        vl = _u32(buf, pos)
        pos += 4
        if vl > (n - pos) // 2:
            return TRUNCATED
        val_off[i] = pos
        val_len[i] = vl
        for j in range(vl):
            if not _pol_ok(buf[pos + 2 * j]):
                return BAD_POLARITY
        pos += 2 * vl
        if pos + 2 + 8 + 4 + 4 > n:
            return TRUNCATED
        if not _pol_ok(buf[pos]):
            return BAD_POLARITY
        b = np.int64(buf[pos])
        if b > 127:
            b -= 256
        pol[i] = b
        mag[i] = buf[pos + 1]
        pos += 2
        secs[i] = _i64(buf, pos)
        pos += 8
        ns = _u32(buf, pos)
        if ns >= 1_000_000_000:
            return BAD_NANOS
        nanos[i] = ns
        pos += 4
        cnt[i] = _u32(buf, pos)
        pos += 4
    return pos


@kernel
def gather_values(off, length, ids, src, out):
    """Concatenate ``src[off[i]:off[i]+length[i]]`` for each ``i`` in ``ids`` (in that
    order) into ``out``; returns the length. Used for row values and for key bytes."""
    p = 0
    for j in range(ids.shape[0]):
        i = ids[j]
        o = off[i]
        m = length[i]
        out[p:p + m] = src[o:o + m]
        p += m
    return p


@kernel
def _put_u16(out, p, v):
    """Write ``v`` as a little-endian u16 at ``out[p:p+2]``."""
    out[p] = v & 0xFF
    out[p + 1] = (v >> 8) & 0xFF


@kernel
def _put_u32(out, p, v):
    """Write ``v`` as a little-endian u32 at ``out[p:p+4]``."""
    for j in range(4):
        out[p + j] = (v >> (8 * j)) & 0xFF


@kernel
def _put_i64(out, p, v):
    """Write ``v`` as a little-endian two's-complement i64 at ``out[p:p+8]``."""
    u = np.uint64(v)
    for j in range(8):
        out[p + j] = np.uint8((u >> np.uint64(8 * j)) & np.uint64(0xFF))


@kernel
def write_v1_entries(out, pos, key_bytes, key_off, key_len, vals, val_off, val_len, pol, mag,
                     secs, nanos, cnt):
    """Write entries in the v1 layout (see :func:`scan_v1_entries`) at ``pos``;
    ``vals`` is the SIGNAL buffer as bytes, ``val_off`` in signals. Returns the end."""
    for i in range(key_len.shape[0]):
        kl = key_len[i]
        _put_u16(out, pos, kl)
        pos += 2
        ko = key_off[i]
        for j in range(kl):
            out[pos + j] = key_bytes[ko + j]
        pos += kl
        vl = val_len[i]
        _put_u32(out, pos, vl)
        pos += 4
        vo = 2 * val_off[i]
        for j in range(2 * vl):
            out[pos + j] = vals[vo + j]
        pos += 2 * vl
        out[pos] = np.uint8(np.int64(pol[i]) & 0xFF)
        out[pos + 1] = mag[i]
        pos += 2
        _put_i64(out, pos, secs[i])
        pos += 8
        _put_u32(out, pos, nanos[i])
        pos += 4
        _put_u32(out, pos, cnt[i])
        pos += 4
    return pos


@kernel
def plan_int_column(col):
    """One look at an integer column for the packed encoding of ``.thermo`` v2.

    Returns ``(lo, hi, arithmetic, step)``. ``arithmetic`` is True when every
    difference between neighbours equals ``step`` (int64, wrapping); then ``lo`` and
    ``hi`` are just the first and last values (the column is constant iff
    ``step == 0``). Otherwise they are the column's min and max, in its dtype.
    An empty column gives ``(0, 0, True, 0)``. Branch-free loops, which the
    compiler vectorises.
    """
    n = col.shape[0]
    if n == 0:
        return col.dtype.type(0), col.dtype.type(0), True, np.int64(0)
    step = np.int64(col[1]) - np.int64(col[0]) if n > 1 else np.int64(0)
    off = np.int64(0)
    for i in range(1, n):
        off |= (np.int64(col[i]) - np.int64(col[i - 1])) ^ step
    if off == 0:
        return col[0], col[n - 1], True, step
    mn = col[0]
    mx = col[0]
    for i in range(n):
        v = col[i]
        mn = v if v < mn else mn
        mx = v if v > mx else mx
    return mn, mx, False, step


@kernel
def check_polarity(sig):
    """Index of the first signal (``uint8`` pairs: polarity byte, magnitude byte) whose
    polarity byte is not 0, 1 or 255, or -1. One branch-free pass first (vectorised:
    ``b + 1`` wraps 255 to 0, so valid bytes map to 0..2), the search only on failure."""
    n = sig.shape[0] // 2
    worst = np.uint8(0)
    for i in range(n):
        v = np.uint8((np.int32(sig[2 * i]) + 1) & 0xFF)
        worst = max(worst, v)
    if worst <= 2:
        return -1
    for i in range(n):
        b = sig[2 * i]
        if b != 0 and b != 1 and b != 255:
            return i
    return -1


@kernel
def load_slots(layer, kid, nkeys, slot):
    """Fill ``slot[kid, layer] = row`` for every row; returns the first row whose
    (key, layer) pair is already taken or whose layer/key id is out of range, or -1."""
    for r in range(layer.shape[0]):
        lay = layer[r]
        k = kid[r]
        if lay > 3 or k < 0 or k >= nkeys or slot[k, lay] >= 0:
            return r
        slot[k, lay] = r
    return -1
