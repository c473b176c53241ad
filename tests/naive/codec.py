"""Twins of ``kernels/codec.py``: v1 entry layout with ``struct``, column planning, slots."""
from __future__ import annotations

import struct

TRUNCATED, BAD_POLARITY, BAD_NANOS = -1, -2, -3


def _pol_ok(b: int) -> bool:
    return b in (0, 1, 255)


def scan_v1_entries(buf: bytes, pos: int, count: int):
    """Parse ``count`` v1 entries from ``pos``.

    Returns ``(end, entries)`` with entries ``(key_off, key_len, val_off, val_len, pol, mag,
    secs, nanos, cnt)``, or ``(code, entries so far)`` with a negative code:
    -1 truncated, -2 bad polarity, -3 nanoseconds >= 1e9.
    """
    out = []
    n = len(buf)
    for _ in range(count):
        if pos + 2 > n:
            return TRUNCATED, out
        (kl,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        if pos + kl > n:
            return TRUNCATED, out
        ko = pos
        pos += kl
        if pos + 4 > n:
            return TRUNCATED, out
        (vl,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if pos + 2 * vl > n:
            return TRUNCATED, out
        vo = pos
        if not all(_pol_ok(buf[vo + 2 * j]) for j in range(vl)):
            return BAD_POLARITY, out
        pos += 2 * vl
        if pos + 18 > n:
            return TRUNCATED, out
        if not _pol_ok(buf[pos]):
            return BAD_POLARITY, out
        pol, mag, secs, nanos, cnt = struct.unpack_from("<bBqII", buf, pos)
        if nanos >= 10**9:
            return BAD_NANOS, out
        pos += 18
        out.append((ko, kl, vo, vl, pol, mag, secs, nanos, cnt))
    return pos, out


def write_v1_entries(entries) -> bytes:
    """v1 bytes of ``(key bytes, value bytes, pol, mag, secs, nanos, cnt)`` entries."""
    out = bytearray()
    for key, val, pol, mag, secs, nanos, cnt in entries:
        out += struct.pack("<H", len(key)) + key + struct.pack("<I", len(val) // 2) + val
        out += struct.pack("<bBqII", pol, mag, secs, nanos, cnt)
    return bytes(out)


def gather_values(off, length, ids, src) -> list:
    """``src[off[i]:off[i] + length[i]]`` for each ``i`` of ``ids``, concatenated."""
    out = []
    for i in ids:
        out.extend(src[off[i]:off[i] + length[i]])
    return out


def plan_int_column(values, signed=True):
    """(lo, hi, arithmetic, step) as kernels.codec.plan_int_column defines them, on Python ints:
    differences wrap as int64; lo/hi are first/last when arithmetic, else min/max."""
    def wrap64(x):
        x &= (1 << 64) - 1
        return x - (1 << 64) if x >= 1 << 63 else x
    if not values:
        return 0, 0, True, 0
    step = wrap64(values[1] - values[0]) if len(values) > 1 else 0
    arith = all(wrap64(b - a) == step for a, b in zip(values, values[1:]))
    if arith:
        return values[0], values[-1], True, step
    return min(values), max(values), False, step


def first_bad_polarity(raw):
    """Index of the first 2-byte signal whose polarity byte is not 0, 1 or 255, or -1."""
    for i in range(len(raw) // 2):
        if raw[2 * i] not in (0, 1, 255):
            return i
    return -1


def load_slots(layer, kid, nkeys):
    """(slot table as a dict, first bad row or -1), as kernels.codec.load_slots fills it."""
    slots = {}
    for r, (lay, k) in enumerate(zip(layer, kid)):
        if lay > 3 or k < 0 or k >= nkeys or (k, lay) in slots:
            return slots, r
        slots[(k, lay)] = r
    return slots, -1
