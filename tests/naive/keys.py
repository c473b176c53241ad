"""Twins of ``kernels/keys.py``: a dict key table, ``zlib.crc32``, ``sorted`` and ``struct``."""
from __future__ import annotations

import struct
import zlib


def crc32(data: bytes) -> int:
    """Standard reflected CRC-32."""
    return zlib.crc32(data)


def find_or_add(queries, known) -> tuple:
    """Key ids of ``queries`` given the ``known`` keys (ids ``0..len(known)-1``); new keys get
    the next ids in first-seen order. Returns ``(ids, first query row of each new key)``."""
    ids = {k: i for i, k in enumerate(known)}
    first = []
    out = []
    for q, key in enumerate(queries):
        if key not in ids:
            ids[key] = len(ids)
            first.append(q)
        out.append(ids[key])
    return out, first


def probe_table(keys, size) -> list:
    """The open-addressing table ``rebuild_table`` fills: linear probing from ``crc32 & (size-1)``."""
    tab = [-1] * size
    for k, key in enumerate(keys):
        i = crc32(key) & (size - 1)
        while tab[i] >= 0:
            i = (i + 1) & (size - 1)
        tab[i] = k
    return tab


def key_prefix(key: bytes) -> int:
    """First 8 bytes of ``key`` as a big-endian integer, zero-padded."""
    return int.from_bytes(key[:8].ljust(8, b"\x00"), "big")


def argsort_keys(keys) -> list:
    """Stable bytewise order of ``keys`` (positions)."""
    return sorted(range(len(keys)), key=lambda i: keys[i])


def frame_keys(keys) -> bytes:
    """``u64 length (little-endian) + bytes`` for each key."""
    return b"".join(struct.pack("<Q", len(k)) + k for k in keys)
