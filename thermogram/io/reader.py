"""The bounds-checked byte :class:`Reader` and the small field readers every format shares.

Every read checks the bytes left before it takes them, so a hostile length can never
make a decoder read past its input or allocate more than the input could hold; any
inconsistency raises :class:`~thermogram.errors.FormatError`.
"""
from __future__ import annotations

import struct
from typing import List, Optional

import numpy as np

from ..errors import FormatError
from ..signal import SIGNAL, Signal

__all__ = ["Reader", "MAGIC", "MAX_KEY_BYTES_ON_LOAD"]

MAGIC = b"THRM"
"""The first four bytes of every ``.thermo`` file (v1 and v2)."""
MAX_KEY_BYTES_ON_LOAD = 1 << 20
"""Longest key a file may hold (1 MiB); longer is treated as a hostile file."""


class Reader:
    """Bounds-checked little-endian reader: every read checks the bytes left."""

    __slots__ = ("buf", "pos", "end", "what")

    def __init__(self, buf: bytes, pos: int = 0, end: Optional[int] = None, what: str = "file"):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.what = what

    def left(self) -> int:
        """Number of bytes between the current position and ``end``."""
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes, advancing the position; raises :class:`FormatError` if fewer are left."""
        if n < 0 or n > self.end - self.pos:
            raise FormatError(f"{self.what}: truncated (need {n} bytes at offset {self.pos}, "
                              f"{self.end - self.pos} left)")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt: str, n: int):
        return struct.unpack_from(fmt, self.take(n))[0]

    def u8(self) -> int:
        """Read the next unsigned 8-bit integer."""
        return self._unpack("<B", 1)

    def u16(self) -> int:
        """Read the next little-endian unsigned 16-bit integer."""
        return self._unpack("<H", 2)

    def u32(self) -> int:
        """Read the next little-endian unsigned 32-bit integer."""
        return self._unpack("<I", 4)

    def u64(self) -> int:
        """Read the next little-endian unsigned 64-bit integer."""
        return self._unpack("<Q", 8)

    def i64(self) -> int:
        """Read the next little-endian signed 64-bit integer."""
        return self._unpack("<q", 8)

    def count(self, min_item_bytes: int, what: str, width: int = 4) -> int:
        """A u32/u64 element count, checked against the bytes left before any allocation."""
        n = self.u32() if width == 4 else self.u64()
        if n * max(min_item_bytes, 1) > self.left():
            raise FormatError(f"{self.what}: {what} count {n} exceeds the {self.left()} bytes left")
        return n


# ----------------------------------------------------------------------------- field readers
def _lp(r: Reader) -> bytes:
    """Length-prefixed bytes (u64 length): the inverse of :func:`thermogram.canonical.lp`."""
    n = r.u64()
    return r.take(n)


def _opt_lp(r: Reader) -> Optional[bytes]:
    """Optional length-prefixed bytes: the inverse of :func:`thermogram.canonical.opt_lp`."""
    flag = r.u8()
    if flag == 0:
        return None
    if flag != 1:
        raise FormatError(f"{r.what}: malformed optional field")
    return _lp(r)


def _text(b: bytes, what: str) -> str:
    """Strict UTF-8 text."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{what} is not valid UTF-8") from None


def _rtext(b: bytes, what: str) -> str:
    """A record's text field: UTF-8 with lone surrogates passed through, as the record
    encodings write keys and sources."""
    try:
        return b.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise FormatError(f"{what} is not valid UTF-8") from None


def _split_keys(kb: bytes, klen: np.ndarray, what: str) -> List[str]:
    """Keys from their concatenated UTF-8 bytes and byte lengths."""
    ends = np.cumsum(klen).tolist()
    starts = [0] + ends[:-1]
    if kb.isascii():  # byte offsets are character offsets: one decode, then slices
        text = kb.decode("ascii")
        return [text[a:b] for a, b in zip(starts, ends)]
    return [_rtext(kb[a:b], what) for a, b in zip(starts, ends)]


def _signal(p: int, m: int, what: str) -> Signal:
    """A :class:`Signal` from its polarity byte (two's complement) and magnitude."""
    pol = p - 256 if p > 127 else p
    if pol not in (-1, 0, 1):
        raise FormatError(f"invalid polarity {pol} in {what}")
    return Signal.from_checked(pol, m)


def _signals_from_bytes(b: bytes, what: str) -> np.ndarray:
    """A read-only SIGNAL vector from its raw 2-byte-per-signal encoding, polarity checked."""
    if len(b) % 2:
        raise FormatError(f"{what}: odd signal byte count")
    v = np.frombuffer(bytearray(b), dtype=SIGNAL)  # a plain byte copy (numpy copies SIGNAL field by field)
    p = v["polarity"]
    if p.size and (p.min() < -1 or p.max() > 1):
        raise FormatError(f"invalid polarity in {what}")
    v.flags.writeable = False
    return v
