"""Packed integer columns, compressed operation arguments and the decoder's row budget:
the building blocks of ``.thermo`` v2 sections (see docs/format.md)."""
from __future__ import annotations

import functools
import struct
import zlib
from typing import List, Tuple

import numpy as np

from ..canonical import lp
from ..errors import FormatError
from ..kernels import codec as _kc
from .reader import Reader, _lp

__all__ = ["pack_ints", "unpack_ints"]

_M64 = (1 << 64) - 1
_WIDTHS = ((1, np.uint8), (2, np.uint16), (4, np.uint32), (8, np.uint64))
_WIDTH_DTYPE = dict(_WIDTHS)


def pack_ints(col: np.ndarray) -> List[bytes]:
    """The packed encoding of an integer column (any integer dtype; its length is known
    from context): ``u8 mode`` then 0 constant ``u64 v`` · 1 arithmetic ``u64 start,
    u64 step`` · 2 offset ``u64 base, u8 width, n x width-byte (v - base)``. Values are
    64-bit patterns; arithmetic wraps modulo 2^64."""
    if col.shape[0] == 0 or col.strides[0] == 0:  # empty, or a broadcast constant
        return [struct.pack("<BQ", 0, int(col[0]) & _M64 if col.shape[0] else 0)]
    lo, hi, arith, step = _kc.plan_int_column(col)
    if arith:
        if step == 0:
            return [struct.pack("<BQ", 0, int(lo) & _M64)]
        return [struct.pack("<BQQ", 1, int(lo) & _M64, int(step) & _M64)]
    mn, mx = int(lo), int(hi)
    span = mx - mn
    width, dt = next(w for w in _WIDTHS if span < 1 << (8 * w[0]))
    if col.dtype.kind == "u":  # no negative differences, no overflow
        d = col - col.dtype.type(mn)
    else:
        d = (col.astype(np.int64, copy=False) - np.int64(mn)).view(np.uint64)
    return [struct.pack("<BQB", 2, mn & _M64, width), d.astype(dt, copy=False).tobytes()]


def unpack_ints(r: Reader, n: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_ints`: ``n`` values as int64 (``signed``) or uint64."""
    mode = r.u8()
    if mode == 0:
        out = np.full(n, r.u64(), np.uint64)
    elif mode == 1:
        start, step = r.u64(), r.u64()
        out = np.arange(n, dtype=np.uint64)
        out *= np.uint64(step)
        out += np.uint64(start)
    elif mode == 2:
        base = r.u64()
        width = r.u8()
        dt = _WIDTH_DTYPE.get(width)
        if dt is None:
            raise FormatError(f"{r.what}: bad integer column width {width}")
        out = np.frombuffer(r.take(n * width), dt).astype(np.uint64)
        out += np.uint64(base)
    else:
        raise FormatError(f"{r.what}: unknown integer column mode {mode}")
    return out.view(np.int64) if signed else out


#: operation arguments this long or longer are stored zlib-compressed when that at least halves
#: them; a ratio over _MAX_RATIO is never written (so a reader can bound what it inflates)
_ZLIB_FROM = 128
_MAX_RATIO = 16


@functools.lru_cache(maxsize=256)
def _pack_args(ab: bytes) -> Tuple[bytes, bytes]:
    """``u8 0 | lp(args)`` or ``u8 1 | lp(zlib(args))`` (memoised: a capsule saved again
    compresses its genesis configuration once)."""
    if len(ab) >= _ZLIB_FROM:
        c = zlib.compress(ab, 6)
        if 2 * len(c) <= len(ab) and len(c) * _MAX_RATIO >= len(ab):
            return b"\x01", lp(c)
    return b"\x00", lp(ab)


def _unpack_args(r: Reader) -> bytes:
    """Inverse of :func:`_pack_args`, inflating at most ``_MAX_RATIO`` times the stored bytes."""
    how = r.u8()
    b = _lp(r)
    if how == 0:
        return b
    if how != 1:
        raise FormatError(f"{r.what}: unknown argument encoding {how}")
    d = zlib.decompressobj()
    try:
        out = d.decompress(b, _MAX_RATIO * len(b) + 1)
    except zlib.error:
        raise FormatError(f"{r.what}: corrupt compressed arguments") from None
    if not d.eof or d.unused_data or len(out) > _MAX_RATIO * len(b):
        raise FormatError(f"{r.what}: compressed arguments are malformed or inflate too far")
    return out


class _Budget:
    """Rows a file may make the decoder allocate: proportional to its size, so a small
    hostile file cannot claim billions of rows through constant-encoded columns."""

    #: key bytes the records of a file may expand to (batches name keys by id, so a small file
    #: can name one long key many times): this many bytes, plus ``KEY_BYTES_PER_BYTE`` per file byte
    KEY_BYTES_FLOOR = 16 << 20
    KEY_BYTES_PER_BYTE = 256

    def __init__(self, nbytes: int):
        self.left = 65_536 + 32 * nbytes
        self.key_bytes_left = self.KEY_BYTES_FLOOR + self.KEY_BYTES_PER_BYTE * nbytes
        self._key_lengths = None

    def take(self, n: int, what: str) -> int:
        """Spend ``n`` rows of the budget (returns ``n``); raises :class:`FormatError` past it."""
        if n > self.left:
            raise FormatError(f"{what}: {n} rows is implausible for a file of this size")
        self.left -= n
        return n

    def take_key_bytes(self, keys, kids, what: str) -> None:
        """Spend the bytes of the keys ``kids`` (ids into the key table ``keys``) that decoding
        a record will materialise; raises :class:`FormatError` naming the budget past it."""
        if self._key_lengths is None or len(self._key_lengths) != len(keys):
            self._key_lengths = keys.lengths().astype(np.int64)
        n = int(self._key_lengths[kids].sum()) if len(kids) else 0
        if n > self.key_bytes_left:
            raise FormatError(f"{what}: its rows name {n:,} bytes of keys, past the decoder's budget of "
                              f"{self.KEY_BYTES_FLOOR >> 20} MiB + {self.KEY_BYTES_PER_BYTE} bytes per file byte")
        self.key_bytes_left -= n
